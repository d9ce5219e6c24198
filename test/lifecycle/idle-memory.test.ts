// Issue 9, item 5: the process tier enforces memoryMb from userland (a resident
// memory watchdog). Memory a timer allocates between calls must be caught too:
// the idle sandbox is killed and the next call starts a fresh instance.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admin, deployCode, invoke, sleep, startServer, testTiers } from '../helpers/server.js';

const GROWER = `
const keep = [];
let started = false;
export async function handler() {
  if (!started) {
    started = true;
    // Off the V8 heap (its cap does not see it), and only between calls.
    setInterval(() => { if (keep.length < 64) keep.push(Buffer.alloc(8 * 1024 * 1024, 1)); }, 20);
  }
  return { held: keep.length };
}`;

test('a timer allocating memory between calls gets the idle process-tier sandbox killed', { skip: !testTiers().includes('process') && 'process tier not under test' }, async () => {
  const s = await startServer({ tier: 'process' });
  try {
    await deployCode(s, 'grower', GROWER, { memoryMb: 128, sandbox: 'process' });
    const first = await invoke(s, 'grower', {});
    assert.equal(first.status, 200, first.text);
    const instances = async () => (await admin(s, 'GET', '/functions/grower')).body.instances as unknown[];
    // 64 x 8 MiB would reach 512 MiB: the watchdog must stop it well before, with no call in flight.
    for (let i = 0; i < 200 && (await instances()).length > 0; i++) await sleep(100);
    assert.deepEqual(await instances(), [], 'the idle sandbox over its memory cap was stopped');
    const next = await invoke(s, 'grower', {});
    assert.equal(next.status, 200, next.text);
    assert.equal(next.headers.get('x-lamina-cold-start'), '1');
    assert.notEqual(next.headers.get('x-lamina-instance'), first.headers.get('x-lamina-instance'));
  } finally {
    await s.stop();
  }
});
