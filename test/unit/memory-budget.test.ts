import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryBudget } from '../../src/worker/memory-budget.js';

test('reservations fit the budget; releases wake waiters in order', async () => {
  const b = new MemoryBudget(300);
  assert.equal(b.tryReserve(128), true);
  assert.equal(b.tryReserve(128), true);
  assert.equal(b.tryReserve(128), false);
  const big = b.reserve(256, 1000);
  const small = b.reserve(32, 1000);
  assert.equal(b.waiting, 2);
  b.release(128);
  b.release(128);
  assert.equal(await big, true);
  assert.equal(await small, true, 'the small one fits after the big one');
  assert.equal(b.reservedMb, 288);
});

test('a waiter gives up after its timeout; a request larger than the budget fails at once', async () => {
  const b = new MemoryBudget(100);
  assert.equal(b.tryReserve(100), true);
  const t0 = Date.now();
  assert.equal(await b.reserve(50, 50), false);
  assert.ok(Date.now() - t0 >= 45);
  assert.equal(b.waiting, 0);
  assert.equal(await b.reserve(200, 1000), false);
});
