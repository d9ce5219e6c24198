// The worker's memory budget: idle instances are evicted (least recently used
// first) to make room, and a call waits, bounded, for busy ones to finish.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admin, deployCode, invoke, startServer, testTiers } from '../helpers/server.js';

const CODE = 'export async function handler(e) { if (e.ms) await new Promise((r) => setTimeout(r, e.ms)); return { ok: true }; }';

for (const tier of testTiers()) {
  test(`[${tier}] with a budget of N x memoryMb, N+5 functions evict idle instances instead of failing`, async () => {
    const n = 3;
    const s = await startServer({ tier, args: ['--memory-budget', String(n * 128)] });
    try {
      const extra = tier === 'isolate' ? { sandbox: 'isolate' } : {};
      const names = Array.from({ length: n + 5 }, (_, i) => `fn${i}`);
      for (const name of names) await deployCode(s, name, CODE, { memoryMb: 128, ...extra });
      for (const name of names) {
        const r = await invoke(s, name, {});
        assert.equal(r.status, 200, `${name}: ${r.text}`);
        const w = (await admin(s, 'GET', '/worker')).body;
        assert.ok(w.memory.reservedMb <= n * 128, `reserved ${w.memory.reservedMb} MB`);
      }
      // The most recently used functions are still warm; the oldest were evicted.
      assert.equal((await invoke(s, names.at(-1)!, {})).headers.get('x-lamina-cold-start'), '0');
      assert.equal((await invoke(s, names[0]!, {})).headers.get('x-lamina-cold-start'), '1');
    } finally {
      await s.stop();
    }
  });
}

test('a call waits for a busy instance to free memory, and gets 429 when the wait runs out', async () => {
  const s = await startServer({ args: ['--memory-budget', '128'], env: { LAMINA_MEMORY_WAIT_MS: '3000' } });
  try {
    await deployCode(s, 'holder', CODE, { memoryMb: 128 });
    await deployCode(s, 'waiter', CODE, { memoryMb: 128 });
    const held = invoke(s, 'holder', { ms: 1000 });
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    const r = await invoke(s, 'waiter', {});
    assert.equal(r.status, 200, r.text);
    assert.ok(performance.now() - t0 >= 500, 'it waited for the holder to finish');
    assert.equal((await held).status, 200);

    const long = invoke(s, 'holder', { ms: 5000 });
    await new Promise((r) => setTimeout(r, 200));
    const refused = await invoke(s, 'waiter', {});
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.body.error.type, 'TooManyRequests');
    assert.equal((await long).status, 200);
  } finally {
    await s.stop();
  }
});
