// Request ids: RFC 9562 version-7 UUIDs whose first 48 bits are the time of the call.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newRequestId } from '../../src/util/request-id.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('a request id is a version-7 UUID carrying its millisecond', () => {
  const now = Date.UTC(2026, 10, 27, 10, 0, 0, 123);
  const id = newRequestId(now);
  assert.match(id, V7);
  assert.equal(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), now);
  assert.match(newRequestId(), V7);
});

test('ids sort by time and do not repeat', () => {
  const t = Date.now();
  const ids = Array.from({ length: 20_000 }, (_, i) => newRequestId(t + Math.floor(i / 100)));
  assert.equal(new Set(ids).size, ids.length);
  for (let i = 100; i < ids.length; i += 100) assert.ok(ids[i - 1]!.slice(0, 13) < ids[i]!.slice(0, 13), 'a later millisecond sorts after');
});
