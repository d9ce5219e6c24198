// Unit tests: the backoff curve, the cron wiring (croner through compileCron,
// time zones, next firings) and the once-per-tick rule of the Scheduler with
// two schedulers sharing one database.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { FunctionVersion } from '../../src/registry/types.js';
import { openDatabase, type Db } from '../../src/store/db.js';
import { backoffMs, MAX_BACKOFF_MS } from '../../src/triggers/backoff.js';
import { destinationRecord } from '../../src/triggers/destination.js';
import { AsyncQueue } from '../../src/triggers/queue.js';
import { Scheduler, scheduleViews, type ScheduleCatalog } from '../../src/triggers/scheduler.js';
import { compileCron, nextFiring } from '../../src/util/cron.js';

test('backoff doubles from the base, with jitter in the upper half', () => {
  assert.equal(backoffMs(1, 1000, () => 0), 500);
  assert.equal(backoffMs(1, 1000, () => 0.999999), 1000);
  assert.equal(backoffMs(2, 1000, () => 0), 1000);
  assert.equal(backoffMs(3, 1000, () => 0.5), 3000);
  assert.equal(backoffMs(4, 1000, () => 0.999999), 8000);
  for (let a = 1; a <= 10; a++) {
    const full = 1000 * 2 ** (a - 1);
    for (let i = 0; i < 50; i++) {
      const d = backoffMs(a, 1000);
      assert.ok(d >= full / 2 && d <= full, `attempt ${a}: ${d}`);
    }
  }
  const spread = new Set(Array.from({ length: 50 }, () => backoffMs(3, 1000)));
  assert.ok(spread.size > 10, 'jitter spreads retries');
  assert.equal(backoffMs(40, 1000, () => 0.999999), MAX_BACKOFF_MS);
  assert.equal(backoffMs(0, 100, () => 0), 50, 'a bad attempt number counts as the first');
});

test('cron: five fields, six with seconds, time zones, bad input', () => {
  const from = new Date('2026-01-15T10:00:30Z');
  assert.equal(nextFiring(compileCron('*/5 * * * *', 'UTC'), from)?.toISOString(), '2026-01-15T10:05:00.000Z');
  assert.equal(nextFiring(compileCron('10 * * * * *', 'UTC'), from)?.toISOString(), '2026-01-15T10:01:10.000Z');
  assert.equal(nextFiring(compileCron('0 9 * * *', 'Europe/Paris'), from)?.toISOString(), '2026-01-16T08:00:00.000Z', 'Paris is UTC+1 in January');
  assert.equal(nextFiring(compileCron('0 9 * * *', 'Europe/Paris'), new Date('2026-07-15T10:00:00Z'))?.toISOString(), '2026-07-16T07:00:00.000Z', 'and UTC+2 in July');
  assert.equal(nextFiring(compileCron('0 0 * * 1', 'America/New_York'), from)?.toISOString(), '2026-01-19T05:00:00.000Z');
  assert.throws(() => compileCron('* * * *', 'UTC'), /five fields/);
  assert.throws(() => compileCron('* * * * * * *', 'UTC'), /five fields/);
  assert.throws(() => compileCron('60 * * * *', 'UTC'), /invalid cron expression/);
  assert.throws(() => compileCron('* * 31 2 *', 'UTC'), /./, 'February 31st never comes');
  assert.throws(() => compileCron('* * * * *', 'Nowhere/Land'), /unknown time zone/);
});

test('the destination record has the AWS fields', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  assert.deepEqual(destinationRecord({ requestId: 'r', functionName: 'f', condition: 'Success', attempts: 1, event: { a: 1 }, statusCode: 200, result: { ok: true }, now }), {
    version: '1.0',
    timestamp: '2026-01-01T00:00:00.000Z',
    requestContext: { requestId: 'r', functionName: 'f', condition: 'Success', approximateInvokeCount: 1 },
    requestPayload: { a: 1 },
    responseContext: { statusCode: 200, functionError: null },
    responsePayload: { ok: true },
  });
  const failed = destinationRecord({ requestId: 'r', functionName: 'f', condition: 'RetriesExhausted', attempts: 3, event: {}, statusCode: 504, error: { type: 'Timeout', message: 'slow', stack: 'a\nb' }, now });
  assert.deepEqual(failed.responseContext, { statusCode: 504, functionError: 'Unhandled' });
  assert.deepEqual(failed.responsePayload, { errorType: 'Timeout', errorMessage: 'slow', stackTrace: ['a', 'b'] });
  const expired = destinationRecord({ requestId: 'r', functionName: 'f', condition: 'EventAgeExceeded', attempts: 0, event: {}, statusCode: null, error: null, now });
  assert.deepEqual(expired.responseContext, { statusCode: null, functionError: null });
  assert.equal(expired.responsePayload, null);
});

class FakeCatalog extends EventEmitter {
  fns = new Map<string, FunctionVersion>();
  current(name: string) {
    return this.fns.get(name);
  }
  list() {
    return [...this.fns.keys()].map((name) => ({ name }));
  }
  set(name: string, version: number, schedules: FunctionVersion['manifest']['schedules']) {
    const fv = { name, version, manifest: { schedules } } as unknown as FunctionVersion;
    this.fns.set(name, fv);
    this.emit('deployed', fv);
  }
  delete(name: string) {
    this.fns.delete(name);
    this.emit('removed', name);
  }
}

/** What the registry writes on a deploy or delete (the scheduler checks the database before firing). */
async function deployRow(db: Db, name: string, version: number, schedules: unknown[] | null): Promise<void> {
  const now = new Date().toISOString();
  if (schedules === null) {
    await db.kysely.updateTable('functions').set({ current_version: null }).where('name', '=', name).execute();
    return;
  }
  await db.kysely
    .insertInto('functions')
    .values({ name, current_version: version, next_version: version + 1, created_at: now, updated_at: now })
    .onConflict((oc) => oc.column('name').doUpdateSet({ current_version: version, next_version: version + 1 }))
    .execute();
  await db.kysely
    .insertInto('versions')
    .values({ name, version, code_hash: 'h', manifest: JSON.stringify({ schedules }), code_entry: 'index.mjs', size_bytes: 1, created_at: now, packages_hash: null })
    .execute();
}

test('two schedulers on one database fire each tick once; a deploy re-arms and a delete stops at once', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-sched-'));
  const db = await openDatabase(dir);
  try {
    const queue = new AsyncQueue(db);
    const catalogs = [new FakeCatalog(), new FakeCatalog()];
    const schedulers = catalogs.map((c) => new Scheduler(db, queue, c as unknown as ScheduleCatalog, { log: (m) => assert.fail(m) }));
    const v1 = [{ cron: '* * * * * *', event: { v: 1 }, timezone: 'UTC' }];
    await deployRow(db, 'tick', 1, v1);
    for (const c of catalogs) c.set('tick', 1, v1);
    for (const s of schedulers) s.start();
    const rows = () => db.kysely.selectFrom('async_events').selectAll().where('function', '=', 'tick').execute();
    while ((await rows()).length < 3) await new Promise((r) => setTimeout(r, 100));
    const ticks = await db.kysely.selectFrom('schedule_ticks').selectAll().execute();
    assert.equal(new Set(ticks.map((t) => Number(t.tick))).size, ticks.length, 'no tick twice');
    assert.ok(ticks.every((t) => Number(t.tick) % 1000 === 0), 'ticks are on whole seconds');
    const events = await rows();
    assert.ok(events.every((e) => e.trigger === 'schedule' && JSON.parse(e.event).v === 1));
    assert.deepEqual(new Set(ticks.map((t) => t.request_id)), new Set(events.map((e) => e.request_id)), 'one event per tick');
    // Redeploy with a yearly schedule: the every-second one stops now.
    const v2 = [{ cron: '0 0 1 1 *', event: {}, timezone: 'UTC' }];
    await deployRow(db, 'tick', 2, v2);
    for (const c of catalogs) c.set('tick', 2, v2);
    await new Promise((r) => setTimeout(r, 50)); // a fire already in its transaction may commit
    const n = (await rows()).length;
    await new Promise((r) => setTimeout(r, 2200));
    assert.equal((await rows()).length, n, 'no firing after the redeploy');
    const views = scheduleViews(catalogs[0]!, new Date('2026-06-01T00:00:00Z'));
    assert.deepEqual(views, [{ function: 'tick', cron: '0 0 1 1 *', timezone: 'UTC', event: {}, next: '2027-01-01T00:00:00.000Z' }]);
    // Back to every second, then delete: nothing after the delete.
    const v3 = [{ cron: '* * * * * *', event: {}, timezone: 'UTC' }];
    await deployRow(db, 'tick', 3, v3);
    for (const c of catalogs) c.set('tick', 3, v3);
    const m = (await rows()).length;
    while ((await rows()).length < m + 1) await new Promise((r) => setTimeout(r, 100));
    // One node hears of the delete, the other never does: the database stops the second one too.
    await deployRow(db, 'tick', 3, null);
    catalogs[0]!.delete('tick');
    await new Promise((r) => setTimeout(r, 50)); // a fire already in its transaction may commit
    const k = (await rows()).length;
    await new Promise((r) => setTimeout(r, 2200));
    assert.equal((await rows()).length, k, 'no firing after the delete');
    for (const s of schedulers) s.stop();
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
