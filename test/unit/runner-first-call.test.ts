// The runner's side of issue 15's first call: a tier that can take the first
// call with its load gets it there (and the call is recorded as the cold start it
// is); a load that fails fails that call with the load's error; a call handed back
// unrun (a fetch handler) is sent again with invoke; a starting instance that
// carries a call counts as busy, so more waiting calls scale out. And instances
// started ahead (at deploy): warm when ready, cold for a call that waited for them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FunctionVersion } from '../../src/registry/types.js';
import type { InvokeOutcome, InvokeRequest, ModuleKind, Sandbox } from '../../src/sandbox/types.js';
import { FunctionRunner } from '../../src/worker/function-runner.js';
import { MemoryBudget } from '../../src/worker/memory-budget.js';
import { runnerDeps, testVersion } from '../helpers/runner.js';

const fv = testVersion({ concurrency: 4 });

interface Behaviour {
  /** load (and loadWithCall) rejects with this message. */
  loadError?: string;
  /** The module turns out to be a fetch handler: loadWithCall hands the call back. */
  fetch?: boolean;
  /** loadWithCall waits for this before answering. */
  gate?: Promise<void>;
}

interface Fake extends Sandbox {
  via: { loadWithCall: string[]; invoke: string[] };
}

function fake(b: Behaviour): Fake {
  let alive = true;
  let kind: ModuleKind | undefined;
  const via = { loadWithCall: [] as string[], invoke: [] as string[] };
  // A fetch call (req.http) answers a response object, as a fetch handler does.
  const answer = (req: InvokeRequest): InvokeOutcome => ({
    ok: true,
    value: req.http ? { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: `${req.http.mode} cold=${req.coldStart}` } : { id: req.requestId, event: req.event, cold: req.coldStart, http: null },
    durationMs: 1,
    logs: '',
    maxMemoryBytes: 0,
  });
  return {
    id: `fake-${Math.random()}`,
    tier: 'isolate',
    shape: { runtime: 'node', memoryMb: 128, network: false },
    via,
    get alive() {
      return alive;
    },
    get kind() {
      return kind;
    },
    async load() {
      await b.gate;
      if (b.loadError) throw new Error(b.loadError);
      if (b.fetch) kind = 'fetch';
    },
    async loadWithCall(_spec, req) {
      await b.gate;
      if (b.loadError) throw new Error(b.loadError);
      if (b.fetch) {
        kind = 'fetch';
        return undefined;
      }
      via.loadWithCall.push(req.requestId);
      return { outcome: Promise.resolve(answer(req)) };
    },
    async invoke(req) {
      via.invoke.push(req.requestId);
      return answer(req);
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

function runnerWith(b: Behaviour, manifest: Partial<FunctionVersion['manifest']> = {}): { runner: FunctionRunner; budget: MemoryBudget; made: Fake[] } {
  const budget = new MemoryBudget(1024);
  const made: Fake[] = [];
  const acquire = async () => {
    const sb = fake(b);
    made.push(sb);
    return sb;
  };
  const runner = new FunctionRunner({ ...fv, manifest: { ...fv.manifest, ...manifest } }, runnerDeps(budget, acquire));
  return { runner, budget, made };
}

test('the first call rides on the load and is recorded as a cold start; the next one is invoked warm', async () => {
  const { runner, made } = runnerWith({});
  const first = await runner.invoke('r1', { a: 1 });
  assert.deepEqual(first.outcome.value, { id: 'r1', event: { a: 1 }, cold: true, http: null });
  assert.equal(first.record.cold, true);
  assert.ok(first.record.initMs !== null && first.record.initMs >= 0);
  const second = await runner.invoke('r2', {});
  assert.equal(second.record.cold, false);
  assert.deepEqual(made[0]!.via, { loadWithCall: ['r1'], invoke: ['r2'] });
  await runner.shutdown();
});

test('a load that fails fails the call sent with it, with the load\'s error; the memory goes back', async () => {
  const { runner, budget } = runnerWith({ loadError: 'no config at load' });
  await assert.rejects(runner.invoke('r1', {}), /no config at load/);
  assert.equal(runner.instances.size, 0);
  assert.equal(budget.reservedMb, 0);
});

test('a call handed back unrun (a fetch handler) is prepared again as fetch and invoked', async () => {
  const { runner, made } = runnerWith({ fetch: true });
  const r = await runner.invoke('r1', { a: 1 });
  assert.equal(r.outcome.ok, true, JSON.stringify(r.outcome.error));
  assert.equal(r.response?.body.toString(), 'fetch cold=true');
  assert.equal(r.record.cold, true);
  assert.deepEqual(made[0]!.via, { loadWithCall: [], invoke: ['r1'] });
  await runner.shutdown();
});

test('a starting instance carrying a call is busy: a second waiting call starts a second instance', async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const { runner, made } = runnerWith({ gate });
  const a = runner.invoke('a', {});
  const b = runner.invoke('b', {});
  for (let i = 0; i < 100 && made.length < 2; i++) await new Promise((r) => setImmediate(r));
  assert.equal(made.length, 2, 'one start per waiting call (instanceConcurrency 1)');
  open();
  const [ra, rb] = await Promise.all([a, b]);
  assert.notEqual(ra.record.instance, rb.record.instance);
  await runner.shutdown();
});

test('an instance started ahead serves its first call warm; a call that waited for it is cold', async () => {
  const { runner, budget } = runnerWith({});
  await runner.startAhead();
  assert.equal(runner.stats().idle, 1);
  assert.equal(budget.reservedMb, 128);
  const r = await runner.invoke('r1', {});
  assert.equal(r.record.cold, false);
  assert.equal(r.record.initMs, null);
  assert.equal((r.outcome.value as { cold: boolean }).cold, false);
  // Already one live: no second start ahead.
  await runner.startAhead();
  assert.equal(runner.instances.size, 1);
  await runner.shutdown();

  let open!: () => void;
  const gate = new Promise<void>((res) => (open = res));
  const slow = runnerWith({ gate });
  const ahead = slow.runner.startAhead();
  const call = slow.runner.invoke('r2', {});
  open();
  await ahead;
  const waited = await call;
  assert.equal(waited.record.cold, true, 'it waited for the start');
  assert.equal(slow.made.length, 1, 'it waited for the instance started ahead rather than starting its own');
  await slow.runner.shutdown();
});

test('a start ahead takes only free memory', async () => {
  const { runner, budget } = runnerWith({});
  assert.ok(budget.tryReserve(1024));
  await runner.startAhead();
  assert.equal(runner.instances.size, 0);
  budget.release(1024);
  assert.equal(budget.reservedMb, 0);
});
