// The shared memory sampler: one timer for every busy sandbox, running while
// any is registered; a failing probe does not stop the others.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemorySampler } from '../../src/sandbox/memory-sampler.js';

test('probes run on the shared timer while registered, a throwing one does not stop the rest, the timer stops when none is left', async () => {
  const s = new MemorySampler(5);
  let a = 0;
  let b = 0;
  const bad = () => {
    throw new Error('a broken sandbox');
  };
  const pa = () => void a++;
  const pb = () => void b++;
  s.add(bad);
  s.add(pa);
  s.add(pb);
  s.add(pa); // added twice, sampled once per tick
  assert.equal(s.size, 3);
  // Wait for ticks (no fixed delay): both healthy probes run despite the throwing one.
  while (a < 3 || b < 3) await new Promise((r) => setTimeout(r, 5));
  assert.ok(Math.abs(a - b) <= 1, `one run per tick each (a=${a}, b=${b})`);
  s.delete(pa);
  s.delete(pb);
  s.delete(bad);
  assert.equal(s.size, 0);
  const [a0, b0] = [a, b];
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual([a, b], [a0, b0], 'no probe runs once deleted');
  assert.equal((s as unknown as { timer: unknown }).timer, undefined, 'the timer is cleared when the set is empty');
});
