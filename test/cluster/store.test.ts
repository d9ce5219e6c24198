// The shared store: the same migrations, registry and metering queries on
// PostgreSQL as on SQLite; registry refresh between two processes' views;
// code distribution by hash.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CodeCache, codePublisher } from '../../src/cluster/code.js';
import { InvocationStore } from '../../src/metering/store.js';
import type { InvocationRecord } from '../../src/metering/types.js';
import { Registry } from '../../src/registry/registry.js';
import type { FunctionVersion } from '../../src/registry/types.js';
import { openDatabase, type Db } from '../../src/store/db.js';
import { openPostgres, redactUrl } from '../../src/store/postgres.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { fnDir, tempDir } from '../registry/helpers.js';

const record = (id: string, fn: string, extra: Partial<InvocationRecord> = {}): InvocationRecord => ({
  requestId: id,
  function: fn,
  version: 1,
  worker: 'w1',
  instance: 'i1',
  startedAt: new Date().toISOString(),
  durationMs: 12.5,
  billedMs: 100,
  memoryMb: 128,
  maxMemoryMb: 30.5,
  gbSeconds: 0.0125,
  cold: false,
  initMs: null,
  status: 'Success',
  statusCode: 200,
  logs: `log of ${id}\n`,
  ...extra,
});

describe('shared store on PostgreSQL', () => {
  let pgdb: TestDatabase;
  let db: Db;
  before(async () => {
    pgdb = await createTestDatabase('lamina_store');
    // Several processes start at once in a cluster: concurrent migrations must not trip over each other.
    const opened = await Promise.all([openPostgres(pgdb.url), openPostgres(pgdb.url), openPostgres(pgdb.url)]);
    db = opened[0]!;
    for (const extra of opened.slice(1)) await extra.close();
  });
  after(async () => {
    await db?.close();
    await pgdb?.drop();
  });

  test('one schema on both dialects', async () => {
    const sqlite = await openDatabase(tempDir());
    try {
      const shape = async (d: Db) =>
        Object.fromEntries(
          (await d.kysely.introspection.getTables())
            .filter((t) => !t.name.startsWith('kysely_'))
            .map((t) => [t.name, t.columns.map((c) => c.name).sort()])
            .sort(),
        );
      const [a, b] = [await shape(sqlite), await shape(db)];
      assert.deepEqual(Object.keys(a).sort(), ['aliases', 'async_events', 'aws_functions', 'billing_days', 'code_blobs', 'functions', 'invocations', 'invoke_keys', 'published_versions', 'schedule_ticks', 'versions', 'workers']);
      assert.deepEqual(b, a);
    } finally {
      await sqlite.close();
    }
    // Migrations already applied: opening again is a no-op.
    const again = await openPostgres(pgdb.url);
    await again.close();
  });

  test('bad URLs and refused logins fail with one clear line, without the password', async () => {
    await assert.rejects(openPostgres('mysql://x@y/z'), /must start with postgres:\/\//);
    const wrong = pgdb.url.replace(/:[^:@/]+@/, ':nope@');
    await assert.rejects(openPostgres(wrong), (err: Error) => {
      assert.match(err.message, /cannot connect to PostgreSQL at postgres:\/\/lamina_test:\*\*\*@/);
      assert.doesNotMatch(err.message, /nope/);
      return true;
    });
    assert.equal(redactUrl('postgres://u:secret@h:1/d'), 'postgres://u:***@h:1/d');
  });

  test('registry: deploy, versions, and a second view catching up through refresh', async () => {
    const published: string[] = [];
    const changed: string[] = [];
    const publish = codePublisher(db);
    const a = await Registry.open(db, tempDir(), {
      publishCode: async (c) => {
        published.push(c.hash);
        await publish(c);
      },
      onChange: (n) => changed.push(n),
    });
    const b = await Registry.open(db, tempDir());
    const events: string[] = [];
    b.on('deployed', (fv) => events.push(`deployed ${fv.name}@${fv.version}`));
    b.on('removed', (n) => events.push(`removed ${n}`));

    const v1 = await a.deployDir(fnDir('greet', { 'index.ts': 'export const handler = async () => ({ v: 1 as number });' }));
    assert.equal(v1.version, 1);
    assert.deepEqual(published, [v1.codeHash], 'code is published before the version commits');
    assert.deepEqual(changed, ['greet']);
    const blob = await db.kysely.selectFrom('code_blobs').selectAll().where('hash', '=', v1.codeHash).executeTakeFirstOrThrow();
    assert.ok(Buffer.isBuffer(blob.archive) && blob.archive.length > 0);

    assert.equal(b.current('greet'), undefined, 'b has not heard yet');
    await b.refresh(['greet']);
    assert.equal(b.current('greet')?.version, 1);
    assert.equal(b.current('greet')?.codeHash, v1.codeHash);

    const v2 = await a.deployDir(fnDir('greet', { 'index.ts': 'export const handler = async () => ({ v: 2 });' }));
    await b.refresh();
    assert.equal(b.current('greet')?.version, 2);
    assert.equal((await b.describe('greet'))?.versions.length, 2);
    assert.equal(typeof (await b.getVersion('greet', 1))?.sizeBytes, 'number');

    // A prepare that fails keeps the old version current; a later refresh takes it.
    await a.deployDir(fnDir('greet', { 'index.ts': 'export const handler = async () => ({ v: 3 });' }));
    await b.refresh(['greet'], { prepare: async () => Promise.reject(new Error('no code yet')) });
    assert.equal(b.current('greet')?.version, 2);
    const prepared: FunctionVersion[] = [];
    await b.refresh(['greet'], { prepare: async (fv) => void prepared.push(fv) });
    assert.equal(b.current('greet')?.version, 3);
    assert.deepEqual(prepared.map((p) => p.version), [3]);

    assert.equal(await a.remove('greet'), true);
    await b.refresh();
    assert.equal(b.current('greet'), undefined);
    assert.deepEqual(events, ['deployed greet@1', 'deployed greet@2', 'deployed greet@3', 'removed greet']);
    // Versions are never reused, across processes too.
    const v4 = await b.deployDir(fnDir('greet', { 'index.ts': 'export const handler = async () => 4;' }));
    assert.equal(v4.version, 4);
    assert.notEqual(v2.codeHash, v1.codeHash);
  });

  test('metering: records, logs and the bill come back with numbers', async () => {
    const store = new InvocationStore(db, { perGbSecond: 0.0000166667, perRequest: 0.0000002 }, 100);
    store.record(record('r1', 'bill-a', { cold: true, initMs: 3.25 }));
    store.record(record('r2', 'bill-a', { status: 'HandlerError', statusCode: 500 }));
    store.record(record('r3', 'bill-b', { worker: 'w2' }));
    const got = await store.get('r1');
    assert.equal(got?.cold, true);
    assert.equal(got?.initMs, 3.25);
    assert.equal(got?.logs, 'log of r1\n');
    const list = await store.list({ function: 'bill-a', limit: 10 });
    assert.equal(list.length, 2);
    assert.equal(typeof list[0]!.billedMs, 'number');
    const bill = await store.billing(null, null);
    const a = bill.functions.find((f) => f.function === 'bill-a')!;
    assert.deepEqual([a.invocations, a.errors, a.coldStarts, a.billedMs], [2, 1, 1, 200]);
    assert.ok(Math.abs(a.gbSeconds - 0.025) < 1e-9);
    assert.equal(bill.total.invocations, 3);
    // Duplicates (a record written twice) are ignored.
    store.record(record('r3', 'bill-b'));
    await store.flush();
    assert.equal((await store.billing(null, null)).total.invocations, 3);
  });

  test('code travels by hash: fetched once, verified, cached at DATA_DIR/code/<hash>', async () => {
    const a = await Registry.open(db, tempDir(), { publishCode: codePublisher(db) });
    const fv = await a.deployDir(fnDir('multi', { 'index.ts': 'import { x } from "./lib/x"; export const handler = async () => x;', 'lib/x.ts': 'export const x = 42;' }));
    const workerDir = tempDir();
    const cache = new CodeCache(db, workerDir);
    await cache.init();
    await Promise.all([cache.ensure(fv.codeHash), cache.ensure(fv.codeHash)]);
    assert.equal(cache.fetched, 1, 'concurrent first uses share one fetch');
    const dir = path.join(workerDir, 'code', fv.codeHash);
    assert.deepEqual(fs.readdirSync(dir).sort(), fs.readdirSync(fv.codeDir).sort());
    assert.equal(fs.readFileSync(path.join(dir, fv.codeEntry), 'utf8'), fs.readFileSync(path.join(fv.codeDir, fv.codeEntry), 'utf8'));
    await cache.ensure(fv.codeHash);
    assert.equal(cache.fetched, 1);

    // A blob whose content does not match its hash is refused.
    const fake = 'f'.repeat(64);
    const blob = await db.kysely.selectFrom('code_blobs').select('archive').where('hash', '=', fv.codeHash).executeTakeFirstOrThrow();
    await db.kysely.insertInto('code_blobs').values({ hash: fake, archive: blob.archive, size_bytes: 1, created_at: '' }).execute();
    await assert.rejects(new CodeCache(db, tempDir()).ensure(fake), /corrupt/);
    await assert.rejects(cache.ensure('0'.repeat(64)), /not in the shared store/);
    await assert.rejects(cache.ensure('../etc'), /not a code hash/);
  });
});
