// The first call sent along with the load (Sandbox.loadWithCall, issue 15): its
// result, its logs (the top level's first), errors at load time vs in the call,
// a fetch handler's call handed back, and the call's deadline counted from the
// end of the load. Driven on the isolate backend as the worker drives it.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { LaminaError } from '../../src/errors.js';
import type { InvokeRequest, LoadSpec, Sandbox } from '../../src/sandbox/types.js';
import { build, call, Fixture, type Built } from './helpers.js';

const fx = new Fixture();
after(() => fx.close());

let seq = 0;
const req = (event: unknown, timeoutMs = 5000): InvokeRequest => ({ requestId: `first-${++seq}`, event, deadlineMs: Date.now() + timeoutMs, coldStart: true });
const specOf = (fn: Built): LoadSpec => {
  const m = fn.manifest;
  return { functionName: m.name, functionVersion: 1, codeDir: fn.codeDir, entry: fn.codeEntry, handler: m.handler, env: m.env, memoryMb: m.memoryMb, timeoutMs: m.timeoutMs, network: m.network };
};
const sandboxes: Sandbox[] = [];
after(() => Promise.all(sandboxes.map((s) => s.destroy())));
async function fresh(fn: Built): Promise<Sandbox> {
  const sb = await fx.backend.create({ runtime: 'node', memoryMb: fn.manifest.memoryMb, network: false });
  sandboxes.push(sb);
  return sb;
}

test('the first call comes back with the load: its result, the top level\'s logs then its own', async () => {
  const fn = await build({ 'index.js': "console.log('top'); let n = 0; export async function handler(e, c) { console.log('call ' + e.x); return { x: e.x, n: ++n, cold: c.coldStart }; }" }, {}, 'along');
  const sb = await fresh(fn);
  const running = await sb.loadWithCall!(specOf(fn), req({ x: 7 }));
  assert.ok(running, 'an event handler runs the call sent with its load');
  const o = await running.outcome;
  assert.equal(o.ok, true, JSON.stringify(o.error));
  assert.deepEqual(o.value, { x: 7, n: 1, cold: true });
  assert.equal(o.logs, 'top\ncall 7\n');
  // The isolate stays loaded: the next call goes the usual way, with its own logs only.
  const again = await call(sb, { x: 8 });
  assert.deepEqual(again.value, { x: 8, n: 2, cold: false });
  assert.equal(again.logs, 'call 8\n');
});

test('an error thrown in the call is the call\'s (the isolate lives on); one thrown at load rejects the load', async () => {
  const throwing = await build({ 'index.js': "export async function handler(e) { if (e.fail) throw new Error('bad input'); return 'fine'; }" }, {}, 'callthrow');
  const sb = await fresh(throwing);
  const o = await (await sb.loadWithCall!(specOf(throwing), req({ fail: true })))!.outcome;
  assert.equal(o.ok, false);
  assert.equal(o.error?.type, 'HandlerError');
  assert.equal(o.error?.message, 'bad input');
  assert.equal(sb.alive, true);
  assert.equal((await call(sb, {})).value, 'fine');

  const broken = await build({ 'index.js': "console.log('about to fail'); throw new Error('no config at load'); export const handler = async () => 1;" }, {}, 'loadthrow');
  const sb2 = await fresh(broken);
  await assert.rejects(sb2.loadWithCall!(specOf(broken), req({})), (err: unknown) => {
    assert.ok(err instanceof LaminaError);
    assert.equal(err.type, 'HandlerError');
    assert.match(err.message, /failed to initialize: no config at load/);
    return true;
  });
  assert.equal(sb2.alive, false);
});

test('a load that runs out of memory rejects as the load\'s failure; the call was not run', async () => {
  const hog = await build({ 'index.js': 'const keep = []; for (;;) keep.push(new Array(1e5).fill(1)); export const handler = async () => 1;' }, { memoryMb: 64 }, 'loadhog');
  const sb = await fresh(hog);
  await assert.rejects(sb.loadWithCall!(specOf(hog), req({})), (err: unknown) => {
    assert.ok(err instanceof LaminaError);
    assert.equal(err.type, 'MemoryLimitExceeded');
    return true;
  });
});

test('a fetch handler\'s call is handed back unrun; sent again as fetch it answers', async () => {
  const fn = await build({ 'index.js': "console.log('top'); export default { async fetch(req) { return new Response('got ' + req.method); } };" }, {}, 'fetchfirst');
  const sb = await fresh(fn);
  assert.equal(await sb.loadWithCall!(specOf(fn), req({ x: 1 })), undefined);
  assert.equal(sb.kind, 'fetch');
  const o = await sb.invoke({ ...req({ version: '2.0', requestContext: { http: { method: 'GET' } }, rawPath: '/', headers: {} }), http: { mode: 'fetch', url: 'http://h/run/fetchfirst', basePath: '/run/fetchfirst' } });
  assert.equal(o.ok, true, JSON.stringify(o.error));
  // The top level's output waited for the call that did run.
  assert.match(o.logs, /^top\n/);
});

test('the call\'s deadline starts when the load is done: a slow top level does not eat into it', async () => {
  const fn = await build({ 'index.js': 'const t0 = Date.now(); while (Date.now() - t0 < 1000); const loadedAt = Date.now(); export async function handler(e, c) { return { loadedAt, deadlineMs: c.deadlineMs }; }' }, { timeoutMs: 5000 }, 'slowtop');
  const sb = await fresh(fn);
  const o = await (await sb.loadWithCall!(specOf(fn), req({}, 5000)))!.outcome;
  assert.equal(o.ok, true, JSON.stringify(o.error));
  const { loadedAt, deadlineMs } = o.value as { loadedAt: number; deadlineMs: number };
  // Counted from the send it would end at most 4000 ms after the top level finished.
  assert.ok(deadlineMs - loadedAt > 4500, `deadline ${deadlineMs - loadedAt} ms after the load`);
  assert.ok(o.durationMs < 1000, `the call's duration (${o.durationMs} ms) leaves the load out`);
});
