// The runner with the scale-out gate (src/worker/scale-gate.ts), against fake sandboxes
// that take 30 ms to load and 200 ms per call: a burst of 20 calls to a CPU-bound
// function stops at a few instances (its calls wait for them, in order, and all
// succeed), while the same burst to a function waiting on I/O gets an instance per call.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FunctionVersion } from '../../src/registry/types.js';
import type { InvokeOutcome, Sandbox } from '../../src/sandbox/types.js';
import { FunctionRunner } from '../../src/worker/function-runner.js';
import { MemoryBudget } from '../../src/worker/memory-budget.js';
import { ScaleGate } from '../../src/worker/scale-gate.js';
import { runnerDeps, testVersion } from '../helpers/runner.js';

const CORES = 2;
const fv = testVersion({ concurrency: 100 });

/** `cpuBound`: the sandbox is runnable from its load on (a spinning call); else asleep (a call waiting on I/O). */
function fake(cpuBound: boolean): Sandbox {
  let alive = true;
  let loadedAt = 0;
  return {
    id: `fake-${Math.random()}`,
    tier: 'container',
    shape: { runtime: 'node', memoryMb: 128, network: false },
    get alive() {
      return alive;
    },
    async load() {
      await sleep(30);
      loadedAt = performance.now();
    },
    async invoke(req): Promise<InvokeOutcome> {
      await sleep(200);
      return { ok: true, value: req.requestId, durationMs: 200, logs: '', maxMemoryBytes: 0 };
    },
    // Runnable all the time since the load (on a CPU or queued for one), or asleep.
    sched: () => {
      const t = cpuBound && loadedAt ? performance.now() - loadedAt : 0;
      return { cpuMs: t / 2, waitMs: t / 2 };
    },
    async stats() {
      return { memoryBytes: 0, maxMemoryBytes: 0 };
    },
    async destroy() {
      alive = false;
    },
    onDeath() {},
  };
}

function runnerWith(gate: Pick<ScaleGate, 'mayStart'>, o: { cpuBound?: boolean; maxQueue?: number; fv?: FunctionVersion } = {}): { runner: FunctionRunner; started: () => number } {
  const budget = new MemoryBudget(1 << 20);
  let started = 0;
  const acquire = async () => {
    started++;
    return fake(o.cpuBound ?? false);
  };
  const runner = new FunctionRunner(o.fv ?? fv, runnerDeps(budget, acquire, { maxQueue: o.maxQueue ?? 100, scaleGate: gate }));
  return { runner, started: () => started };
}

async function burst(cpuBound: boolean): Promise<{ started: number; answers: unknown[] }> {
  const gate = new ScaleGate({ cores: CORES, intervalMs: 10, startsPerCore: 1 });
  const { runner, started } = runnerWith(gate, { cpuBound });
  try {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => runner.invoke(`r${i}`, {})));
    return { started: started(), answers: results.map((r) => r.outcome.value) };
  } finally {
    gate.stop();
    await runner.shutdown();
  }
}

test('a CPU-bound burst stops at a few instances; every call is served', async () => {
  const { started, answers } = await burst(true);
  assert.deepEqual(answers, Array.from({ length: 20 }, (_, i) => `r${i}`));
  assert.ok(started >= CORES, `${started} instances`);
  assert.ok(started <= 10, `${started} instances for 20 calls on ${CORES} busy cores (ungated: 20)`);
});

test('a burst that waits on I/O still gets an instance per call, started in rounds', async () => {
  const { started, answers } = await burst(false);
  assert.equal(answers.length, 20);
  assert.ok(started >= 16, `${started} instances`);
});

test('calls held back by the gate may wait beyond the queue limit, up to the slots of the instances not started', async () => {
  // One instance only, whatever waits; a queue limit of 2 and concurrency 5: once it is warm, of 8
  // simultaneous calls 1 runs, 2 + 4 wait (4 instances could still have been started), the 8th is refused.
  const only = { mayStart: (_s: unknown, c: { ready: number; starting: number }) => c.ready + c.starting === 0 };
  const five = { ...fv, manifest: { ...fv.manifest, concurrency: 5 } };
  const { runner, started } = runnerWith(only, { maxQueue: 2, fv: five });
  await runner.invoke('warm', {});
  const settled = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => runner.invoke(`r${i}`, {})));
  assert.equal(settled.filter((r) => r.status === 'fulfilled').length, 7);
  const refused = settled.filter((r) => r.status === 'rejected');
  assert.equal(refused.length, 1);
  assert.match(String((refused[0] as PromiseRejectedResult).reason), /calls waiting/);
  assert.equal(started(), 1);
  await runner.shutdown();
});
