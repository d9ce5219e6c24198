// Every error status of the contract, provoked for real; after each one the
// server still serves a normal call.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { admin, call, deployCode, deployRaw, invoke, makeFunction, startServer, testTiers, type Reply, type TestServer } from '../helpers/server.js';

function assertError(r: Reply, status: number, type: string): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.body?.error?.type, type, r.text);
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 0);
}

// The exit case only where there is a process to exit (isolates refuse \`process\` at deploy).
const faulty = (tier: string) => `
export async function handler(e) {
  switch (e.do) {
    case 'throw': throw new Error('kaboom ' + e.n);
    ${tier === 'isolate' ? '' : "case 'exit': process.exit(3);"}
    case 'heap': { const a = []; for (;;) a.push(new Array(100000).fill(Math.random())); }
    case 'buffers': { const a = []; for (;;) { a.push(new Uint8Array(16 << 20).fill(1)); await new Promise((r) => setTimeout(r, 1)); } }
    case 'loop': console.log('last words before the loop'); for (;;) {}
    case 'sleep': await new Promise((r) => setTimeout(r, e.ms)); return { slept: e.ms };
    default: return { ok: true };
  }
}`;

for (const tier of testTiers()) {
  describe(`errors [${tier}]`, () => {
    let s: TestServer;
    const extra = tier === 'isolate' ? { sandbox: 'isolate' } : {};
    before(async () => {
      s = await startServer({ tier, args: ['--max-queue', '3'] });
      await deployCode(s, 'faulty', faulty(tier), { timeoutMs: 1500, memoryMb: 128, ...extra });
      // The allocation bombs get a long timeout: near its heap limit V8 collects again and again,
      // which on a busy machine outlasts 1.5 s, and the test is about the limit, not the clock.
      await deployCode(s, 'bomb', faulty(tier), { timeoutMs: 30_000, memoryMb: 128, ...extra });
      await deployCode(s, 'getonly', 'export const handler = async () => "ok";', { http: { methods: ['get'] }, ...extra });
      await deployCode(s, 'slow1', 'export const handler = async () => { await new Promise((r) => setTimeout(r, 1000)); return 1; };', { concurrency: 1, ...extra });
    });
    after(async () => {
      await s.stop();
    });
    const healthy = async () => {
      const r = await invoke(s, 'faulty', { do: 'ok' });
      assert.equal(r.status, 200, `a normal call after the error: ${r.text}`);
      assert.deepEqual(r.body, { ok: true });
    };

    test('400 BadRequest for invalid JSON', async () => {
      assertError(await call(`${s.url}/run/faulty`, { method: 'POST', body: '{"a":', headers: { 'content-type': 'application/json' } }), 400, 'BadRequest');
      assertError(await call(`${s.url}/run/faulty`, { method: 'POST', body: 'plain words', headers: { 'content-type': 'text/plain' } }), 400, 'BadRequest');
      await healthy();
    });

    test('404 FunctionNotFound for an unknown function', async () => {
      const r = await invoke(s, 'no-such-function', {});
      assertError(r, 404, 'FunctionNotFound');
      assert.ok(r.body.error.requestId);
      await healthy();
    });

    test('405 MethodNotAllowed for a method the function does not accept', async () => {
      assert.equal((await call(`${s.url}/run/getonly`)).status, 200);
      const r = await invoke(s, 'getonly', {});
      assertError(r, 405, 'MethodNotAllowed');
      assert.match(r.headers.get('allow') ?? '', /GET/);
      await healthy();
    });

    test('413 PayloadTooLarge for a 7 MB body', async () => {
      const big = JSON.stringify({ blob: 'x'.repeat(7 * 1024 * 1024) });
      assertError(await call(`${s.url}/run/faulty`, { method: 'POST', body: big, headers: { 'content-type': 'application/json' } }), 413, 'PayloadTooLarge');
      await healthy();
    });

    test('429 TooManyRequests when the queue is full', async () => {
      // concurrency 1 and a queue of 3: once the instance is warm, of 8 simultaneous
      // calls 1 runs, 3 wait and 4 are refused.
      assert.equal((await invoke(s, 'slow1', {})).status, 200);
      const replies = await Promise.all(Array.from({ length: 8 }, () => invoke(s, 'slow1', {})));
      const codes = replies.map((r) => r.status).sort();
      assert.equal(codes.filter((c) => c === 200).length, 4, codes.join(','));
      const refused = replies.filter((r) => r.status === 429);
      assert.equal(refused.length, 4, codes.join(','));
      assertError(refused[0]!, 429, 'TooManyRequests');
      await healthy();
    });

    test('500 HandlerError with message; the stack only for the admin token', async () => {
      const r = await invoke(s, 'faulty', { do: 'throw', n: 7 });
      assertError(r, 500, 'HandlerError');
      assert.equal(r.body.error.message, 'kaboom 7');
      assert.equal(r.body.error.stack, undefined);
      assert.equal(r.body.error.requestId, r.headers.get('x-lamina-request-id'));
      const a = await invoke(s, 'faulty', { do: 'throw', n: 8 }, { headers: { 'content-type': 'application/json', authorization: `Bearer ${s.token}` } });
      assertError(a, 500, 'HandlerError');
      assert.match(a.body.error.stack, /kaboom 8/);
      await healthy();
    });

    test('500 HandlerError when the function fails to initialize', async () => {
      await deployCode(s, 'badinit', 'throw new Error("broken at import"); export const handler = async () => 1;', extra);
      const r = await invoke(s, 'badinit', {});
      assertError(r, 500, 'HandlerError');
      assert.match(r.body.error.message, /broken at import/);
      await healthy();
    });

    if (tier !== 'isolate') {
      test('502 SandboxCrashed when the handler exits its process', async () => {
        const r = await invoke(s, 'faulty', { do: 'exit' });
        assertError(r, 502, 'SandboxCrashed');
        assert.match(r.body.error.message, /code 3/);
        await healthy();
      });
    }

    test('502 MemoryLimitExceeded when the handler allocates past memoryMb (JS heap)', async () => {
      assertError(await invoke(s, 'bomb', { do: 'heap' }), 502, 'MemoryLimitExceeded');
      await healthy();
    });

    test('502 MemoryLimitExceeded when the handler allocates past memoryMb (typed arrays)', async () => {
      assertError(await invoke(s, 'bomb', { do: 'buffers' }), 502, 'MemoryLimitExceeded');
      await healthy();
    });

    test('504 Timeout for an endless loop, and the next call gets a fresh instance', async () => {
      const before = await invoke(s, 'faulty', { do: 'ok' });
      const r = await invoke(s, 'faulty', { do: 'loop' });
      assertError(r, 504, 'Timeout');
      // What the call logged before it hung is in its record (logs are not held back for batching).
      const rec = (await admin(s, 'GET', `/invocations/${r.headers.get('x-lamina-request-id')}`)).body;
      assert.equal(rec.status, 'Timeout');
      assert.match(rec.logs, /last words before the loop/);
      const next = await invoke(s, 'faulty', { do: 'ok' });
      assert.equal(next.status, 200);
      assert.notEqual(next.headers.get('x-lamina-instance'), r.headers.get('x-lamina-instance'));
      assert.ok(before.headers.get('x-lamina-instance'));
    });

    test('the admin API needs the token', async () => {
      const r = await call(`${s.url}/api/v1/functions`);
      assertError(r, 401, 'Unauthorized');
      assertError(await call(`${s.url}/api/v1/functions`, { headers: { authorization: 'Bearer wrong' } }), 401, 'Unauthorized');
      assert.equal((await call(`${s.url}/healthz`)).status, 200);
    });

    test('a bad manifest is refused at deploy with a message naming the field', async () => {
      const dir = makeFunction({ 'index.mjs': 'export const handler = async () => 1;' }, { name: 'badm', memoryMb: 'lots' }, 'badm');
      const r = await deployRaw(s, dir);
      assertError(r, 400, 'InvalidFunction');
      assert.match(r.body.error.message, /memoryMb/);
      const unknown = makeFunction({ 'index.mjs': 'export const handler = async () => 1;' }, { name: 'badu', memory: 128 }, 'badu');
      const r2 = await deployRaw(s, unknown);
      assertError(r2, 400, 'InvalidFunction');
      assert.match(r2.body.error.message, /memory/);
      const junk = await admin(s, 'PUT', '/functions/junk', Buffer.from('not a tarball') as unknown as BodyInit, 'application/gzip');
      assertError(junk, 400, 'BadRequest');
      await healthy();
    });
  });
}
