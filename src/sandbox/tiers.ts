// The sandbox tiers this build knows, and the order `auto` tries them in
// (strongest first; `isolate` is never picked by auto because it runs
// JavaScript without Node's built-ins only).
import { ContainerBackend } from './container/backend.js';
import { IsolateBackend } from './isolate/backend.js';
import { ProcessBackend } from './process/backend.js';
import type { RunDir } from './run-dir.js';
import type { SandboxBackend, SandboxTier } from './types.js';

type Factory = (runDir: RunDir, log: (msg: string) => void) => Promise<SandboxBackend>;

export const TIER_FACTORIES: Partial<Record<SandboxTier, Factory>> & Record<'process', Factory> = {
  process: async (runDir) => new ProcessBackend(runDir),
  isolate: async (runDir, log) => new IsolateBackend(runDir, log),
  container: async (runDir, log) => new ContainerBackend(runDir, log),
};

export const AUTO_ORDER: SandboxTier[] = ['container', 'process'];
