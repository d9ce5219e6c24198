// What every benchmark part receives and returns.

export interface BenchOptions {
  /** Smoke mode for CI: a few seconds per part, numbers checked for presence only. */
  short: boolean;
  /** Where results.json and the plots of this run go. */
  outDir: string;
  /** Also write plots here (docs/ in full mode). */
  plotDir: string | undefined;
  /** Sandbox tiers to try (each is skipped with a note when `lamina up --sandbox T` fails). */
  tiers: string[];
  /** Elasticity run time per target, seconds (default 60, short 5). */
  durationS: number | undefined;
  /** Profile the Lamina server during the warm test (node --cpu-prof). */
  profile: boolean;
}

/** One of the aims, with what this run measured. */
export interface Check {
  aim: string;
  measured: string;
  met: boolean;
}

export interface PartResult {
  rows: Record<string, unknown>[];
  checks: Check[];
  notes: string[];
}

export type Part = (o: BenchOptions) => Promise<PartResult>;

export function log(msg: string): void {
  console.log(msg);
}
