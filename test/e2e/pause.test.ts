// Idle container instances are frozen: they accrue no CPU (read from their
// cgroup) and answer their next call correctly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admin, deployCode, invoke, sleep, startServer, testTiers } from '../helpers/server.js';

// The first call leaves a busy background timer running; a paused instance must not run it.
const BUSY = `
let started = false;
export async function handler() {
  if (!started) {
    started = true;
    setInterval(() => { const t = Date.now(); while (Date.now() - t < 20) {} }, 25);
  }
  return { ok: true };
}`;

test('a paused instance burns no CPU while idle and answers its next call', { skip: !testTiers().includes('container') && 'container tier not under test' }, async () => {
  const s = await startServer({ tier: 'container', env: { LAMINA_PAUSE_AFTER_MS: '200' } });
  try {
    await deployCode(s, 'busy', BUSY);
    const first = await invoke(s, 'busy', {});
    assert.equal(first.status, 200);
    const instance = async () => (await admin(s, 'GET', '/functions/busy')).body.instances[0];
    await sleep(600);
    const a = await instance();
    assert.equal(a.paused, true, JSON.stringify(a));
    assert.equal(typeof a.cpuMs, 'number');
    await sleep(500);
    const b = await instance();
    assert.equal(b.paused, true);
    assert.ok(b.cpuMs - a.cpuMs < 10, `a paused instance used ${b.cpuMs - a.cpuMs} ms of CPU in 500 ms`);

    const next = await invoke(s, 'busy', {});
    assert.equal(next.status, 200);
    assert.deepEqual(next.body, { ok: true });
    assert.equal(next.headers.get('x-lamina-instance'), first.headers.get('x-lamina-instance'));
    assert.equal(next.headers.get('x-lamina-cold-start'), '0');
    // Running again, its background work burns CPU until it is paused once more.
    const c = await instance();
    await sleep(150);
    const d = await instance();
    assert.equal(d.paused, false);
    assert.ok(d.cpuMs - c.cpuMs > 20, `a running instance used ${d.cpuMs - c.cpuMs} ms of CPU in 150 ms`);
  } finally {
    await s.stop();
  }
});
