// Graceful shutdown: calls in flight finish, every sandbox stops, no process is left.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deployCode, invoke, isAlive, sleep, startServer } from '../helpers/server.js';

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal}: in-flight calls finish, then no runtime process is left`, async () => {
    const s = await startServer();
    await deployCode(s, 'nap', 'export async function handler(e) { await new Promise((r) => setTimeout(r, e.ms)); return { slept: e.ms }; }');
    await Promise.all(Array.from({ length: 5 }, () => invoke(s, 'nap', { ms: 1 })));
    const inflight = invoke(s, 'nap', { ms: 1000 });
    await sleep(300);
    const children = s.childPids();
    assert.ok(children.length >= 5, `sandbox processes before shutdown: ${children.length}`);
    const code = await s.stop(signal);
    assert.equal(code, 0, s.output());
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { slept: 1000 });
    await sleep(100);
    const left = children.filter(isAlive);
    assert.deepEqual(left, [], `processes left: ${left.join(',')}`);
  });
}

test('a server killed with SIGKILL leaves no runtime process behind', async () => {
  const s = await startServer();
  await deployCode(s, 'loop', 'export async function handler() { for (;;) {} }', { timeoutMs: 60000 });
  void invoke(s, 'loop', {}).catch(() => undefined);
  await sleep(500);
  const children = s.childPids();
  assert.ok(children.length > 0);
  await s.stop('SIGKILL');
  await sleep(300);
  assert.deepEqual(children.filter(isAlive), []);
});
