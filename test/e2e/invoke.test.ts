// Deploy, invoke, warm reuse, versions, delete and restart, through real HTTP.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import path from 'node:path';
import { ROOT, admin, deploy, deployCode, invoke, makeFunction, sleep, startServer, testTiers, type TestServer } from '../helpers/server.js';

for (const tier of testTiers()) {
  describe(`invoke [${tier}]`, () => {
    let s: TestServer;
    before(async () => {
      s = await startServer({ tier });
    });
    after(async () => {
      await s.stop();
    });

    test('a TypeScript function answers with its JSON, then stays warm on the same instance', async () => {
      const dir = makeFunction(
        { 'index.ts': 'export async function handler(event: { name: string }) { const n: number = 40 + 2; return { hi: event.name, n }; }' },
        { name: 'greet', ...(tier === 'isolate' ? { sandbox: 'isolate' } : {}) },
        'greet',
      );
      const v = await deploy(s, dir);
      assert.equal(v.version, 1);
      const first = await invoke(s, 'greet', { name: 'Ada' });
      assert.equal(first.status, 200, first.text);
      assert.deepEqual(first.body, { hi: 'Ada', n: 42 });
      // The isolate tier loads an isolate at deploy (LAMINA_ISOLATE_PRELOAD): its first call is warm.
      assert.equal(first.headers.get('x-lamina-cold-start'), tier === 'isolate' ? '0' : '1');
      for (const h of ['x-lamina-request-id', 'x-lamina-duration-ms', 'x-lamina-billed-ms', 'x-lamina-worker', 'x-lamina-instance']) assert.ok(first.headers.get(h), `${h} is set`);
      const second = await invoke(s, 'greet', { name: 'Bob' });
      assert.equal(second.status, 200);
      assert.deepEqual(second.body, { hi: 'Bob', n: 42 });
      assert.equal(second.headers.get('x-lamina-cold-start'), '0');
      assert.equal(second.headers.get('x-lamina-instance'), first.headers.get('x-lamina-instance'));
      assert.notEqual(second.headers.get('x-lamina-request-id'), first.headers.get('x-lamina-request-id'));
    });

    test('an empty body is the event {} and undefined returns null', async () => {
      await deployCode(s, 'empty', 'export const handler = async (e) => (Object.keys(e).length === 0 ? undefined : e);', tier === 'isolate' ? { sandbox: 'isolate' } : {});
      const r = await invoke(s, 'empty');
      assert.equal(r.status, 200);
      assert.equal(r.text, 'null');
      const r2 = await fetch(`${s.url}/run/empty/some/path?q=1`);
      assert.equal(r2.status, 200);
    });

    test('handler styles: default export and CommonJS', async () => {
      const extra = tier === 'isolate' ? { sandbox: 'isolate' } : {};
      await deployCode(s, 'dflt', 'export default async function (e) { return { style: "default", e }; }', extra);
      assert.deepEqual((await invoke(s, 'dflt', { a: 1 })).body, { style: 'default', e: { a: 1 } });
      const cjs = makeFunction({ 'index.js': 'exports.handler = async (e) => ({ style: "cjs", e });', 'package.json': '{"type":"commonjs"}' }, { name: 'cjs', ...extra }, 'cjs');
      await deploy(s, cjs);
      assert.deepEqual((await invoke(s, 'cjs', { b: 2 })).body, { style: 'cjs', e: { b: 2 } });
    });

    test('the context names the call', async () => {
      await deployCode(
        s,
        'ctx',
        'export async function handler(e, c) { return { ...c, remaining: c.getRemainingTimeInMillis() }; }',
        { memoryMb: 256, timeoutMs: 5000, ...(tier === 'isolate' ? { sandbox: 'isolate' } : {}) },
      );
      const before = Date.now();
      const r = await invoke(s, 'ctx');
      assert.equal(r.status, 200, r.text);
      const c = r.body;
      assert.equal(c.requestId, r.headers.get('x-lamina-request-id'));
      assert.equal(c.functionName, 'ctx');
      assert.equal(c.functionVersion, 1);
      assert.equal(c.memoryLimitMb, 256);
      assert.equal(c.coldStart, tier !== 'isolate');
      assert.ok(c.deadlineMs >= before + 4000 && c.deadlineMs <= Date.now() + 5000, `deadline ${c.deadlineMs}`);
      assert.ok(c.remaining > 3000 && c.remaining <= 5000, `remaining ${c.remaining}`);
      assert.equal((await invoke(s, 'ctx')).body.coldStart, false);
    });

    test('a redeploy makes a new version: the call in flight finishes on the old one, new calls get the new one', async () => {
      const extra = tier === 'isolate' ? { sandbox: 'isolate' } : {};
      const code = (v: string) => `export async function handler(e) { if (e.ms) await new Promise((r) => setTimeout(r, e.ms)); return { v: ${JSON.stringify(v)} }; }`;
      await deployCode(s, 'roll', code('one'), extra);
      assert.deepEqual((await invoke(s, 'roll')).body, { v: 'one' });
      const inflight = invoke(s, 'roll', { ms: 800 });
      await sleep(200);
      await deployCode(s, 'roll', code('two'), extra);
      const fresh = await invoke(s, 'roll');
      assert.deepEqual(fresh.body, { v: 'two' });
      assert.equal(fresh.headers.get('x-lamina-version'), '2');
      const old = await inflight;
      assert.equal(old.status, 200);
      assert.deepEqual(old.body, { v: 'one' });
      const d = await admin(s, 'GET', '/functions/roll');
      assert.equal(d.body.version, 2);
      assert.deepEqual(d.body.versions.map((x: { version: number }) => x.version).sort(), [1, 2]);
    });

    test('delete removes the function and stops its instances', async () => {
      await deployCode(s, 'gone', 'export const handler = async () => 1;', tier === 'isolate' ? { sandbox: 'isolate' } : {});
      assert.equal((await invoke(s, 'gone')).status, 200);
      assert.equal((await admin(s, 'DELETE', '/functions/gone')).status, 200);
      const r = await invoke(s, 'gone');
      assert.equal(r.status, 404);
      assert.equal(r.body.error.type, 'FunctionNotFound');
      const w = await admin(s, 'GET', '/worker');
      const live = w.body.functions.find((f: { name: string }) => f.name === 'gone');
      assert.ok(!live || live.idle + live.busy + live.starting + live.paused === 0, JSON.stringify(live));
      assert.equal((await admin(s, 'DELETE', '/functions/gone')).status, 404);
    });
  });
}

test('functions survive a server restart', async () => {
  const first = await startServer();
  const dataDir = first.dataDir;
  await deploy(first, path.join(ROOT, 'examples', 'hello'));
  assert.equal((await invoke(first, 'hello', { name: 'x' })).status, 200);
  await first.proc.kill('SIGTERM');
  await new Promise((r) => first.proc.once('exit', r));
  const second = await startServer({ dataDir });
  try {
    const r = await invoke(second, 'hello', { name: 'again' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { message: 'Hello, again!' });
    assert.equal(r.headers.get('x-lamina-cold-start'), '1');
    const inv = await admin(second, 'GET', '/invocations?function=hello');
    assert.equal(inv.body.invocations.length, 2, 'records from before the restart are kept');
  } finally {
    await second.stop();
  }
});
