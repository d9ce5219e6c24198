// Retention of the async queue: ended events and fired ticks past the window
// are deleted, in batches; waiting and running events are never touched, on
// SQLite and on PostgreSQL; the window's setting is checked at start.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { openDatabase, type Db } from '../../src/store/db.js';
import { openPostgres } from '../../src/store/postgres.js';
import { asyncConfig } from '../../src/triggers/config.js';
import { AsyncQueue } from '../../src/triggers/queue.js';
import { Pruner, pruneBefore } from '../../src/triggers/retention.js';
import { createTestDatabase } from '../helpers/postgres.js';

const DAY = 86_400_000;

/** 1,200 old ended events (more than two delete batches), 5 recent ones, and old events still pending. */
async function seed(db: Db, now: number): Promise<{ pending: string[]; recent: string[] }> {
  const q = new AsyncQueue(db);
  const old = await Promise.all(Array.from({ length: 1200 }, (_, i) => q.enqueue({ function: 'f', event: { i } })));
  const recent = await Promise.all(Array.from({ length: 5 }, () => q.enqueue({ function: 'f', event: {} })));
  const queued = await q.enqueue({ function: 'f', event: { waiting: true } });
  const running = await q.enqueue({ function: 'f', event: { running: true } });
  const statuses = ['Success', 'HandlerError', 'Expired', 'Timeout'];
  for (let i = 0; i < old.length; i += 100) {
    const ids = old.slice(i, i + 100);
    await db.kysely.updateTable('async_events').set({ status: statuses[(i / 100) % 4]!, finished_at: now - 10 * DAY }).where('request_id', 'in', ids).execute();
  }
  await db.kysely.updateTable('async_events').set({ status: 'Success', finished_at: now - 1000 }).where('request_id', 'in', recent).execute();
  // Pending events as old as the ended ones: their age alone must never delete them.
  await db.kysely.updateTable('async_events').set({ enqueued_at: now - 20 * DAY, available_at: now - 20 * DAY }).where('request_id', 'in', [queued, running]).execute();
  await db.kysely.updateTable('async_events').set({ status: 'Running', owner: 'w', lease_until: now + 60_000 }).where('request_id', '=', running).execute();
  await db.kysely
    .insertInto('schedule_ticks')
    .values([
      { function: 'f', schedule: '0', tick: now - 10 * DAY, request_id: old[0]!, fired_at: now - 10 * DAY },
      { function: 'f', schedule: '0', tick: now - 1000, request_id: recent[0]!, fired_at: now - 1000 },
    ])
    .execute();
  return { pending: [queued, running], recent };
}

async function check(db: Db): Promise<void> {
  const now = Date.now();
  const { pending, recent } = await seed(db, now);
  const r = await pruneBefore(db, now - 7 * DAY);
  assert.deepEqual(r, { events: 1200, ticks: 1 });
  const left = await db.kysely.selectFrom('async_events').select(['request_id', 'status']).execute();
  assert.deepEqual(new Set(left.map((x) => x.request_id)), new Set([...pending, ...recent]));
  const ticks = await db.kysely.selectFrom('schedule_ticks').select('fired_at').execute();
  assert.deepEqual(ticks.map((t) => Number(t.fired_at)), [now - 1000]);
  // A second pass finds nothing more.
  assert.deepEqual(await pruneBefore(db, now - 7 * DAY), { events: 0, ticks: 0 });
}

test('SQLite: ended events and ticks past the window go, pending and recent ones stay', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-retention-'));
  const db = await openDatabase(dir);
  try {
    await check(db);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PostgreSQL: the same rule', async () => {
  const pgdb = await createTestDatabase('lamina_retention');
  const db = await openPostgres(pgdb.url, { poolSize: 2 });
  try {
    await check(db);
  } finally {
    await db.close();
    await pgdb.drop();
  }
});

test('the Pruner runs at start and again on its period, and stops', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-retention-'));
  const db = await openDatabase(dir);
  try {
    const q = new AsyncQueue(db);
    const id = await q.enqueue({ function: 'f', event: {} });
    await db.kysely.updateTable('async_events').set({ status: 'Success', finished_at: Date.now() - 120_000 }).where('request_id', '=', id).execute();
    const logs: string[] = [];
    const pruner = new Pruner(db, 60_000, (m) => logs.push(m), 50);
    pruner.start();
    while (logs.length === 0) await new Promise((r) => setTimeout(r, 20));
    assert.match(logs[0]!, /pruned 1 ended event/);
    // An event that ends later is pruned by a later pass, without a restart.
    const later = await q.enqueue({ function: 'f', event: {} });
    await db.kysely.updateTable('async_events').set({ status: 'Expired', finished_at: Date.now() - 120_000 }).where('request_id', '=', later).execute();
    while (logs.length < 2) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await q.get(later), undefined);
    await pruner.stop();
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('LAMINA_ASYNC_RETENTION_S: seconds, at least a minute, with a clear error', () => {
  assert.equal(asyncConfig({}).retentionMs, 7 * DAY);
  assert.equal(asyncConfig({ LAMINA_ASYNC_RETENTION_S: '3600' }).retentionMs, 3_600_000);
  assert.throws(() => asyncConfig({ LAMINA_ASYNC_RETENTION_S: '10' }), /LAMINA_ASYNC_RETENTION_S must be a number from 60/);
  assert.throws(() => asyncConfig({ LAMINA_ASYNC_RETENTION_S: 'week' }), /LAMINA_ASYNC_RETENTION_S/);
});
