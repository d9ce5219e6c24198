// Issue 9, item 2: every failure path of a call or an instance start gives back
// the instance's slot and its reserved memory. Sandboxes here fail on purpose
// (a call that throws, a load that throws, a pause that fails); after each
// attack the worker's memory budget counts back to zero.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InvokeOutcome, Sandbox } from '../../src/sandbox/types.js';
import { FunctionRunner } from '../../src/worker/function-runner.js';
import { MemoryBudget } from '../../src/worker/memory-budget.js';
import { runnerDeps, testVersion } from '../helpers/runner.js';

const fv = testVersion({ concurrency: 4 });

interface Faults {
  invoke?: 'throw';
  load?: 'throw';
  pause?: 'throw';
}

function fakeSandbox(faults: Faults): Sandbox {
  let alive = true;
  const listeners: ((r: string) => void)[] = [];
  const sb: Sandbox = {
    id: `fake-${Math.random()}`,
    tier: 'container',
    shape: { runtime: 'node', memoryMb: 128, network: false },
    get alive() {
      return alive;
    },
    async load() {
      if (faults.load) throw new Error('load exploded');
    },
    async invoke(): Promise<InvokeOutcome> {
      if (faults.invoke) throw new RangeError('Maximum call stack size exceeded');
      return { ok: true, value: 1, durationMs: 1, logs: '', maxMemoryBytes: 0 };
    },
    async pause() {
      if (faults.pause) throw new Error('the sandbox did not freeze in time');
    },
    async resume() {},
    async stats() {
      return { memoryBytes: 0, maxMemoryBytes: 0 };
    },
    async destroy() {
      alive = false;
    },
    onDeath(l) {
      listeners.push(l);
    },
  };
  return sb;
}

function runnerWith(faults: Faults, pauseAfterMs = -1): { runner: FunctionRunner; budget: MemoryBudget; made: Sandbox[] } {
  const budget = new MemoryBudget(1024);
  const made: Sandbox[] = [];
  const acquire = async () => {
    const sb = fakeSandbox(faults);
    made.push(sb);
    return sb;
  };
  const runner = new FunctionRunner(fv, runnerDeps(budget, acquire, { pauseAfterMs }));
  return { runner, budget, made };
}

test('a call whose send throws (a 100k-deep event) answers 502 and frees the slot and the memory', async () => {
  const { runner, budget, made } = runnerWith({ invoke: 'throw' });
  // Eight attacks, as in the issue: before the fix, the budget stayed full and every function got 429.
  for (let i = 0; i < 8; i++) {
    const { outcome } = await runner.invoke(`r${i}`, {});
    assert.equal(outcome.ok, false);
    assert.equal(outcome.error?.type, 'SandboxCrashed');
  }
  assert.equal(runner.instances.size, 0);
  assert.equal(budget.reservedMb, 0);
  assert.ok(made.length > 0 && made.every((s) => !s.alive), 'every broken sandbox was destroyed');
});

test('an instance whose load throws gives its memory back and fails the waiting call', async () => {
  const { runner, budget } = runnerWith({ load: 'throw' });
  await assert.rejects(runner.invoke('r1', {}), /load exploded/);
  assert.equal(runner.instances.size, 0);
  assert.equal(budget.reservedMb, 0);
});

test('a pause that fails destroys the sandbox; its instance and memory go, and the next call starts afresh', async () => {
  const { runner, budget, made } = runnerWith({ pause: 'throw' }, 1);
  assert.equal((await runner.invoke('r1', {})).outcome.ok, true);
  for (let i = 0; i < 100 && runner.instances.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(runner.instances.size, 0, 'the instance whose sandbox could not be paused was retired');
  assert.equal(budget.reservedMb, 0);
  assert.equal(made[0]!.alive, false);
  const next = await runner.invoke('r2', {});
  assert.equal(next.outcome.ok, true);
  assert.equal(next.record.cold, true);
  await runner.shutdown();
  assert.equal(budget.reservedMb, 0);
});

test('healthy calls keep their instance warm; shutdown frees everything', async () => {
  const { runner, budget } = runnerWith({});
  await Promise.all([1, 2, 3].map((i) => runner.invoke(`r${i}`, {})));
  assert.ok(budget.reservedMb > 0);
  assert.ok(runner.stats().idle > 0);
  await runner.shutdown();
  assert.equal(budget.reservedMb, 0);
});
