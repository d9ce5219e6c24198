// The measuring loop every warm comparison shares: each round runs the load once
// against every target, in reverse order every other round (so drift on a shared
// machine hits all targets alike), and records the load's result with the CPU per
// request of the target's process and of its descendants (the sandboxes), from
// /proc, and the cores that processes outside the benchmark used meanwhile.
import type { LoadResult } from './load.js';
import { backgroundLoad, cpuTimeMs } from './server.js';

export interface RoundTarget {
  name: string;
  url: string;
  /** The server process; its descendants' CPU is counted as the sandboxes'. */
  pid: number;
}

export interface RoundResult extends LoadResult {
  /** CPU of the target's own process per request, us. */
  serverUs: number;
  /** CPU of its descendants per request, us. */
  sandboxUs: number;
  /** Cores used by processes outside the benchmark during the run. */
  otherCores: number;
}

/** `rounds` interleaved rounds of `load` over `targets`; every result by target name, in round order. */
export async function interleavedRounds<T extends RoundTarget>(targets: T[], rounds: number, load: (t: T) => Promise<LoadResult>): Promise<Map<string, RoundResult[]>> {
  const runs = new Map<string, RoundResult[]>(targets.map((t) => [t.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const t of r % 2 ? [...targets].reverse() : targets) {
      const other = backgroundLoad();
      const s0 = cpuTimeMs(t.pid);
      const a0 = cpuTimeMs(t.pid, true);
      const res = await load(t);
      const s1 = cpuTimeMs(t.pid);
      const a1 = cpuTimeMs(t.pid, true);
      const per = (ms: number) => (res.requests ? (ms * 1000) / res.requests : NaN);
      runs.get(t.name)!.push({ ...res, serverUs: per(s1 - s0), sandboxUs: per(a1 - a0 - (s1 - s0)), otherCores: other() });
    }
  }
  return runs;
}
