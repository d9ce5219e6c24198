// Issue 16: warm calls on the container tier hung until their timeout when an
// idle instance was frozen while being handed a call (or thawed while a freeze
// was still under way). With a pause delay of a few ms, many instances and a
// tight loop of calls, the race is hit often; every call must answer, none may
// time out. Also: LAMINA_PAUSE_AFTER_MS=-1 is accepted and never pauses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admin, deployCode, invoke, sleep, startServer, testTiers } from '../helpers/server.js';

const skip = !testTiers().includes('container') && 'container tier not under test';

test('no warm call hangs when instances are paused and thawed in a tight loop', { skip }, async () => {
  const s = await startServer({ tier: 'container', env: { LAMINA_PAUSE_AFTER_MS: '2' } });
  try {
    // A short timeout: a call frozen by the race shows up as a 504 instead of 30 s of waiting.
    await deployCode(s, 'noop', 'export async function handler(e) { return { n: e.n }; }', { timeoutMs: 3000, concurrency: 8 });
    const workers = 8;
    const perWorker = 40;
    const bad: string[] = [];
    await Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        for (let i = 0; i < perWorker; i++) {
          const r = await invoke(s, 'noop', { n: i });
          if (r.status !== 200 || r.body?.n !== i) bad.push(`${r.status} ${r.text}`);
          // Gaps around the pause delay, so pauses start just before, during and after the next call.
          await sleep((i + w) % 5);
        }
      }),
    );
    assert.deepEqual(bad, [], `${bad.length} of ${workers * perWorker} calls failed`);
  } finally {
    await s.stop();
  }
});

test('LAMINA_PAUSE_AFTER_MS=-1 is accepted and never pauses', { skip }, async () => {
  const s = await startServer({ tier: 'container', env: { LAMINA_PAUSE_AFTER_MS: '-1' } });
  try {
    await deployCode(s, 'idle', 'export async function handler() { return 1; }');
    assert.equal((await invoke(s, 'idle', {})).status, 200);
    await sleep(300);
    const inst = (await admin(s, 'GET', '/functions/idle')).body.instances[0];
    assert.equal(inst.paused, false, JSON.stringify(inst));
  } finally {
    await s.stop();
  }
});
