// Fixtures for FunctionRunner unit tests: a function version with no code on disk,
// and the worker-side deps a runner needs (a memory budget, metering dropped).
import { parseManifest } from '../../src/registry/manifest.js';
import type { FunctionVersion } from '../../src/registry/types.js';
import type { Sandbox } from '../../src/sandbox/types.js';
import type { RunnerDeps } from '../../src/worker/function-runner.js';
import type { MemoryBudget } from '../../src/worker/memory-budget.js';

/** Version 1 of function "f" with this manifest (memoryMb 128 unless given). */
export function testVersion(manifest: Record<string, unknown>): FunctionVersion {
  return {
    name: 'f',
    version: 1,
    codeHash: 'x',
    manifest: { ...parseManifest({ memoryMb: 128, ...manifest }, { dirName: 'f', files: ['index.mjs'] }) },
    codeDir: '/nonexistent',
    codeEntry: 'index.mjs',
    sizeBytes: 0,
    createdAt: new Date(0).toISOString(),
  };
}

/** Deps that take memory from `budget`, get sandboxes from `acquire`, and drop records; `extra` overrides any of them. */
export function runnerDeps(budget: MemoryBudget, acquire: () => Promise<Sandbox>, extra: Partial<RunnerDeps> = {}): RunnerDeps {
  return {
    workerId: 'w',
    maxQueue: 100,
    billingGranularityMs: 1,
    pauseAfterMs: -1,
    acquire,
    reserveMemory: async (mb) => budget.tryReserve(mb),
    reserveFreeMemory: (mb) => budget.tryReserve(mb),
    releaseMemory: (mb) => budget.release(mb),
    offerIdle: () => false,
    record: () => undefined,
    ...extra,
  };
}
