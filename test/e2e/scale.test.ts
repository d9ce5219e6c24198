// Scale-out under concurrent load, the concurrency cap, and instanceConcurrency.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deployCode, invoke, startServer, testTiers, type TestServer } from '../helpers/server.js';

const SLEEP = 'export async function handler(e) { await new Promise((r) => setTimeout(r, e.ms ?? 500)); return { ok: true }; }';

for (const tier of testTiers()) {
  describe(`scale-out [${tier}]`, () => {
    let s: TestServer;
    const extra = tier === 'isolate' ? { sandbox: 'isolate' } : {};
    before(async () => {
      s = await startServer({ tier });
    });
    after(async () => {
      await s.stop();
    });

    test('20 concurrent 500 ms calls finish in far less than 20 x 500 ms, on several instances', async () => {
      await deployCode(s, 'nap', SLEEP, extra);
      const t0 = performance.now();
      const replies = await Promise.all(Array.from({ length: 20 }, () => invoke(s, 'nap', { ms: 500 })));
      const wall = performance.now() - t0;
      assert.ok(replies.every((r) => r.status === 200), replies.map((r) => r.status).join(','));
      const instances = new Set(replies.map((r) => r.headers.get('x-lamina-instance')));
      // Serial would be 10 s; scaled out it is ~0.5 s plus cold starts on 2 cores.
      assert.ok(wall < 4000, `took ${wall.toFixed(0)} ms`);
      // Several instances, not one: how many depends on how fast cold starts are on this machine
      // (on 2 cores, 20 container starts at once let the first instances take queued calls).
      assert.ok(instances.size >= 5, `${instances.size} instances`);
    });

    test('with concurrency 2, calls are served two at a time', async () => {
      await deployCode(s, 'pair', SLEEP, { concurrency: 2, ...extra });
      const t0 = performance.now();
      const replies = await Promise.all(Array.from({ length: 20 }, () => invoke(s, 'pair', { ms: 500 })));
      const wall = performance.now() - t0;
      assert.ok(replies.every((r) => r.status === 200), replies.map((r) => r.status).join(','));
      const instances = new Set(replies.map((r) => r.headers.get('x-lamina-instance')));
      assert.equal(instances.size, 2);
      // 20 calls, 2 at a time, 500 ms each: at least 10 rounds.
      assert.ok(wall >= 10 * 500 - 50, `took ${wall.toFixed(0)} ms`);
    });

    test('instanceConcurrency lets one instance serve several calls at once', async () => {
      await deployCode(s, 'multi', SLEEP, { concurrency: 1, instanceConcurrency: 5, ...extra });
      await invoke(s, 'multi', { ms: 1 });
      const t0 = performance.now();
      const replies = await Promise.all(Array.from({ length: 5 }, () => invoke(s, 'multi', { ms: 500 })));
      const wall = performance.now() - t0;
      assert.ok(replies.every((r) => r.status === 200));
      assert.equal(new Set(replies.map((r) => r.headers.get('x-lamina-instance'))).size, 1);
      assert.ok(wall < 2000, `took ${wall.toFixed(0)} ms`);
    });
  });
}

test('idle instances expire after the keep-alive time', async () => {
  const s = await startServer({ args: ['--keep-alive', '300'] });
  try {
    await deployCode(s, 'brief', 'export const handler = async () => 1;');
    const a = await invoke(s, 'brief', {});
    await new Promise((r) => setTimeout(r, 1200));
    const b = await invoke(s, 'brief', {});
    assert.equal(b.headers.get('x-lamina-cold-start'), '1');
    assert.notEqual(a.headers.get('x-lamina-instance'), b.headers.get('x-lamina-instance'));
  } finally {
    await s.stop();
  }
});
