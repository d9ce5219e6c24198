// The sandbox tiers this build knows, and the order `auto` tries them in
// (strongest first; `isolate` is never picked by auto because it runs
// JavaScript without Node's built-ins only).
import { ContainerBackend } from './container/backend.js';
import { DEFAULT_FUNCTIONS_PER_HOST, IsolateBackend } from './isolate/backend.js';
import { ProcessBackend } from './process/backend.js';
import type { RunDir } from './run-dir.js';
import type { SandboxBackend, SandboxTier } from './types.js';

type Factory = (runDir: RunDir, log: (msg: string) => void) => Promise<SandboxBackend>;

export const TIER_FACTORIES: Partial<Record<SandboxTier, Factory>> & Record<'process', Factory> = {
  process: async (runDir) => new ProcessBackend(runDir),
  isolate: async (runDir, log) => new IsolateBackend(runDir, log, { functionsPerHost: isolateFunctionsPerHost() }),
  container: async (runDir, log) => new ContainerBackend(runDir, log),
};

/** LAMINA_ISOLATE_FUNCTIONS_PER_HOST (docs/configuration.md): how many functions share an isolate host. */
export function isolateFunctionsPerHost(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.LAMINA_ISOLATE_FUNCTIONS_PER_HOST;
  if (raw === undefined || raw === '') return DEFAULT_FUNCTIONS_PER_HOST;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`LAMINA_ISOLATE_FUNCTIONS_PER_HOST must be a whole number of at least 1 (got "${raw}")`);
  return n;
}

export const AUTO_ORDER: SandboxTier[] = ['container', 'process'];
