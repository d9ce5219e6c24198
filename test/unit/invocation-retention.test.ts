// Retention of invocation records: records of calls started before the window's
// UTC midnight are deleted in batches and their billing figures kept by day, so the
// bill over every period that starts at a day boundary is what it was; bad settings
// are refused; on PostgreSQL two pruners at once count every record once.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_PRICES } from '../../src/metering/billing.js';
import { DEFAULT_RETENTION_S, InvocationPruner, cutoffFor, invocationRetentionMs, pruneInvocationsBefore } from '../../src/metering/retention.js';
import { InvocationStore } from '../../src/metering/store.js';
import type { InvocationRecord } from '../../src/metering/types.js';
import { openDatabase, type Db } from '../../src/store/db.js';
import { openPostgres } from '../../src/store/postgres.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let n = 0;
const rec = (fn: string, startedAt: string, extra: Partial<InvocationRecord> = {}): InvocationRecord => ({
  requestId: `r-${n++}`,
  function: fn,
  version: 1,
  worker: 'w',
  instance: 'i',
  startedAt,
  durationMs: 12,
  billedMs: 100,
  memoryMb: 128,
  maxMemoryMb: 30,
  gbSeconds: 0.0125,
  cold: false,
  initMs: null,
  status: 'Success',
  statusCode: 200,
  logs: 'log\n',
  trigger: 'http',
  ...extra,
});

const lines = (b: Awaited<ReturnType<InvocationStore['billing']>>) => b.functions.map((f) => [f.function, f.invocations, f.errors, f.coldStarts, f.billedMs, Number(f.gbSeconds.toFixed(6))]);

test('LAMINA_INVOCATIONS_RETENTION_S: 30 days by default, 0 keeps everything, less than a day is refused', () => {
  assert.equal(invocationRetentionMs({}), DEFAULT_RETENTION_S * 1000);
  assert.equal(DEFAULT_RETENTION_S, 30 * 86_400);
  assert.equal(invocationRetentionMs({ LAMINA_INVOCATIONS_RETENTION_S: '0' }), 0);
  assert.equal(invocationRetentionMs({ LAMINA_INVOCATIONS_RETENTION_S: '86400' }), 86_400_000);
  for (const bad of ['3600', '-1', 'week', '1e12']) assert.throws(() => invocationRetentionMs({ LAMINA_INVOCATIONS_RETENTION_S: bad }), /LAMINA_INVOCATIONS_RETENTION_S must be 0 \(keep every record\) or a number of seconds from 86400/);
});

test('the cutoff is the UTC midnight at or before now minus the window', () => {
  const now = Date.parse('2026-12-04T17:30:00.000Z');
  assert.equal(cutoffFor(now, 86_400_000), '2026-12-03T00:00:00.000Z');
  assert.equal(cutoffFor(Date.parse('2026-12-04T00:00:00.000Z'), 2 * 86_400_000), '2026-12-02T00:00:00.000Z');
});

describe('on SQLite', () => {
  let dir: string;
  let db: Db;
  let store: InvocationStore;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-retention-'));
    db = await openDatabase(dir);
    store = new InvocationStore(db, DEFAULT_PRICES, 100);
  });
  after(async () => {
    await store.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('old records go in batches; the bill keeps them by day, the recent ones exactly', async () => {
    const old: InvocationRecord[] = [];
    // More than one batch (500) on the first day, errors and cold starts among them.
    for (let i = 0; i < 1200; i++) old.push(rec(i % 3 ? 'a' : 'b', `2026-11-01T${String(i % 24).padStart(2, '0')}:00:00.000Z`, i % 10 === 0 ? { status: 'HandlerError', statusCode: 500 } : i % 7 === 0 ? { cold: true, initMs: 5 } : {}));
    old.push(rec('a', '2026-11-02T23:59:59.999Z'));
    const recent = [rec('a', '2026-11-03T00:00:00.000Z'), rec('c', '2026-11-03T08:00:00.000Z')];
    for (const r of [...old, ...recent]) store.record(r);
    await store.flush();
    const periods: [string | null, string | null][] = [
      [null, null],
      ['2026-11-01T00:00:00.000Z', null],
      ['2026-11-02T00:00:00.000Z', '2026-11-03T00:00:00.000Z'],
      ['2026-11-03T00:00:00.000Z', null],
      [null, '2026-11-02T00:00:00.000Z'],
    ];
    const before = await Promise.all(periods.map(([s, u]) => store.billing(s, u)));

    assert.equal(await pruneInvocationsBefore(db, '2026-11-03T00:00:00.000Z'), old.length);
    assert.equal(await store.get(old[0]!.requestId), undefined, 'a pruned record is gone');
    assert.equal(await store.get(old[old.length - 1]!.requestId), undefined, 'to the last millisecond before the cutoff');
    assert.deepEqual(await store.get(recent[0]!.requestId), recent[0], 'a record from the cutoff on stays');
    const after = await Promise.all(periods.map(([s, u]) => store.billing(s, u)));
    for (let i = 0; i < periods.length; i++) assert.deepEqual(lines(after[i]!), lines(before[i]!), `period ${periods[i]}`);
    // The same sums in another order: equal up to floating point.
    assert.ok(Math.abs(after[0]!.total.cost.total - before[0]!.total.cost.total) < 1e-12, `${after[0]!.total.cost.total} vs ${before[0]!.total.cost.total}`);

    // A period that starts inside a pruned day counts that day's calls no more (they are kept by day).
    const inside = await store.billing('2026-11-01T12:00:00.000Z', null);
    assert.deepEqual(lines(inside), [['a', 2, 0, 0, 200, 0.025], ['c', 1, 0, 0, 100, 0.0125]]);
    assert.equal(inside.total.invocations, 3, 'the 2nd (kept by day: 1 call) and the live 3rd (2 calls)');

    // Nothing left to prune; a record that arrives late for a pruned day is added to it by the next pass.
    assert.equal(await pruneInvocationsBefore(db, '2026-11-03T00:00:00.000Z'), 0);
    store.record(rec('a', '2026-11-01T05:00:00.000Z', { billedMs: 300 }));
    await store.flush();
    assert.equal(await pruneInvocationsBefore(db, '2026-11-03T00:00:00.000Z'), 1);
    const day1 = await store.billing('2026-11-01T00:00:00.000Z', '2026-11-02T00:00:00.000Z');
    assert.equal(day1.total.invocations, 1201);
    assert.equal(day1.total.billedMs, 1200 * 100 + 300);
  });

  test('the pruner flushes buffered records first and does nothing with a window of 0', async () => {
    store.record(rec('z', '2026-10-01T00:00:00.000Z'));
    const logs: string[] = [];
    const off = new InvocationPruner(db, 0, (m) => logs.push(m), () => store.flush());
    off.start();
    await off.stop();
    await store.flush();
    assert.equal((await store.billing('2026-10-01T00:00:00.000Z', '2026-10-02T00:00:00.000Z')).total.invocations, 1);
    assert.equal((await store.list({ function: 'z', limit: 5 })).length, 1, 'kept');
    store.record(rec('z', '2026-10-01T01:00:00.000Z'));
    const on = new InvocationPruner(db, 86_400_000, (m) => logs.push(m), () => store.flush());
    on.start();
    await on.stop();
    assert.equal((await store.list({ function: 'z', limit: 5 })).length, 0, 'both pruned, the buffered one included');
    assert.equal((await store.billing('2026-10-01T00:00:00.000Z', '2026-10-02T00:00:00.000Z')).total.invocations, 2);
    assert.ok(logs.some((m) => /pruned \d+ invocation record/.test(m)), logs.join('\n'));
  });
});

describe('on PostgreSQL', () => {
  let pgdb: TestDatabase;
  const dbs: Db[] = [];
  before(async () => {
    pgdb = await createTestDatabase('lamina_retention');
    dbs.push(await openPostgres(pgdb.url, { poolSize: 4 }), await openPostgres(pgdb.url, { poolSize: 4 }));
  });
  after(async () => {
    for (const d of dbs) await d.close();
    await pgdb?.drop();
  });

  test('two pruners at once count every record once', async () => {
    const store = new InvocationStore(dbs[0]!, DEFAULT_PRICES, 100);
    for (let i = 0; i < 2000; i++) store.record(rec(`f${i % 4}`, `2026-11-0${1 + (i % 3)}T10:00:00.000Z`));
    store.record(rec('f0', '2026-11-05T10:00:00.000Z'));
    await store.flush();
    const whole = await store.billing(null, null);
    const counts = await Promise.all(dbs.map((d) => pruneInvocationsBefore(d, '2026-11-04T00:00:00.000Z')));
    assert.equal(counts[0]! + counts[1]!, 2000);
    assert.deepEqual(lines(await store.billing(null, null)), lines(whole));
    const day2 = await store.billing('2026-11-02T00:00:00.000Z', '2026-11-03T00:00:00.000Z');
    assert.equal(day2.total.invocations, 667);
    await store.close();
  });
});
