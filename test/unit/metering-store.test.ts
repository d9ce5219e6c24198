// The embedded store's batch write (one prepared statement in one transaction):
// every field round-trips, a request id is recorded once, and a batch written
// while Kysely holds a transaction open waits for it instead of joining it. A database
// file is written by a writer thread, with the server thread as the fallback.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DEFAULT_PRICES } from '../../src/metering/billing.js';
import { InvocationStore } from '../../src/metering/store.js';
import { ThreadWriter } from '../../src/metering/writer-thread.js';
import type { InvocationRecord } from '../../src/metering/types.js';
import { openDatabase, type Db } from '../../src/store/db.js';

let dir: string;
let db: Db;
let store: InvocationStore;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-meter-'));
  db = await openDatabase(dir);
  store = new InvocationStore(db, DEFAULT_PRICES, 1);
});
after(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

const rec = (id: string, extra: Partial<InvocationRecord> = {}): InvocationRecord => ({
  requestId: id,
  function: 'f',
  version: 3,
  worker: 'w1',
  instance: 'i1',
  startedAt: '2026-11-27T10:00:00.000Z',
  durationMs: 1.25,
  billedMs: 2,
  memoryMb: 128,
  maxMemoryMb: 40.5,
  gbSeconds: 0.00025,
  cold: false,
  initMs: null,
  status: 'Success',
  statusCode: 200,
  logs: 'hello\n',
  trigger: 'http',
  ...extra,
});

test('records round-trip through the batch write, once per request id', async () => {
  store.record(rec('a'));
  store.record(rec('b', { cold: true, initMs: 12.5, status: 'HandlerError', statusCode: 500, trigger: 'event', logs: 'x'.repeat(1000) }));
  store.record(rec('a', { logs: 'a second record with the same id is dropped' }));
  await store.flush();
  assert.deepEqual(await store.get('a'), rec('a'));
  assert.deepEqual(await store.get('b'), rec('b', { cold: true, initMs: 12.5, status: 'HandlerError', statusCode: 500, trigger: 'event', logs: 'x'.repeat(1000) }));
  assert.equal((await store.list({ function: 'f', limit: 10 })).length, 2);
});

test('a batch written while a Kysely transaction is open is not part of it', async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const tx = db.kysely
    .transaction()
    .execute(async (t) => {
      await t.insertInto('invocations').values({ request_id: 'in-tx', function: 'f', version: 1, worker: 'w', instance: 'i', started_at: 'x', duration_ms: 1, billed_ms: 1, memory_mb: 1, max_memory_mb: 1, gb_seconds: 0, cold: 0, init_ms: null, status: 'Success', status_code: 200, logs: '' }).execute();
      await held;
      throw new Error('roll back');
    })
    .catch(() => undefined);
  await new Promise((r) => setTimeout(r, 20));
  store.record(rec('c'));
  const flushed = store.flush();
  release();
  await tx;
  await flushed;
  assert.equal(await store.get('in-tx'), undefined);
  assert.deepEqual(await store.get('c'), rec('c'));
});

test('a database file gets its batches written by a writer thread, which commits before flush resolves', async () => {
  store.record(rec('t1'));
  await store.flush();
  const thread = (store as unknown as { thread: ThreadWriter | null }).thread;
  assert.ok(thread instanceof ThreadWriter, 'a writer thread serves a database file');
  assert.equal(thread.usable, true);
  // Read on the server's own connection: the thread's commit is visible.
  assert.deepEqual(await store.get('t1'), rec('t1'));
});

test('when the writer thread dies, batches are written on the server thread and nothing is lost', async () => {
  const s = new InvocationStore(db, DEFAULT_PRICES, 1);
  s.record(rec('d1'));
  await s.flush();
  const thread = (s as unknown as { thread: ThreadWriter }).thread;
  await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
  assert.equal(thread.usable, false);
  s.record(rec('d2'));
  s.record(rec('d3'));
  await s.flush();
  assert.deepEqual(await s.get('d2'), rec('d2'));
  assert.deepEqual(await s.get('d3'), rec('d3'));
  await s.close();
});

test('the writer thread reports a batch that fails, keeps serving, and ends on close', async () => {
  const w = new ThreadWriter(path.join(dir, 'lamina.db'), 'INSERT INTO invocations (request_id, function) VALUES (@id, @fn)');
  // NOT NULL columns left out: the batch fails as a whole, the thread stays.
  await assert.rejects(w.write([{ id: 'x1', fn: 'f' }]), /NOT NULL/);
  assert.equal(w.usable, true);
  await assert.rejects(w.write([{ id: 'x2', fn: 'f' }]), /NOT NULL/);
  await w.close();
  assert.equal(w.usable, false);
  await assert.rejects(w.write([{ id: 'x3', fn: 'f' }]), /ended/);
});

test('a writer thread whose statement cannot be prepared is unusable, with the reason', async () => {
  const w = new ThreadWriter(path.join(dir, 'lamina.db'), 'INSERT INTO no_such_table (a) VALUES (@a)');
  await assert.rejects(w.write([{ a: 1 }]), /no such table|ended/);
  assert.equal(w.usable, false);
  await w.close();
});

test('close writes what is buffered and ends the thread', async () => {
  const s = new InvocationStore(db, DEFAULT_PRICES, 1);
  s.record(rec('c1'));
  await s.flush();
  s.record(rec('c2'));
  await s.close();
  assert.deepEqual(await store.get('c2'), rec('c2'));
});
