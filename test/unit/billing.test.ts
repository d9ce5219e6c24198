import assert from 'node:assert/strict';
import { test } from 'node:test';
import { billedMs, cost, gbSeconds, DEFAULT_PRICES } from '../../src/metering/billing.js';

test('durations round to the nearest ms, then up to the granularity, at least one granule', () => {
  assert.equal(billedMs(120.4, 100), 200);
  assert.equal(billedMs(120.4, 1), 120);
  assert.equal(billedMs(120.6, 1), 121);
  assert.equal(billedMs(119.6, 1), 120);
  assert.equal(billedMs(100, 100), 100);
  assert.equal(billedMs(100.6, 100), 200);
  assert.equal(billedMs(0.1, 100), 100);
  assert.equal(billedMs(0.1, 1), 1);
  assert.equal(billedMs(2500, 1000), 3000);
});

test('GB-seconds and cost', () => {
  assert.equal(gbSeconds(1024, 1000), 1);
  assert.equal(gbSeconds(128, 200), 0.025);
  const c = cost(DEFAULT_PRICES, 1_000_000, 1);
  assert.ok(Math.abs(c.requests - 0.2) < 1e-9);
  assert.ok(Math.abs(c.compute - 0.0000166667) < 1e-12);
  assert.ok(Math.abs(c.total - c.requests - c.compute) < 1e-12);
});
