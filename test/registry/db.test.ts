import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { openDatabase } from '../../src/store/db.js';
import { tempDir } from './helpers.js';

test('openDatabase creates the schema (idempotently) with WAL and foreign keys', async () => {
  const dir = path.join(tempDir(), 'nested', 'data');
  const db = await openDatabase(dir);
  try {
    assert.ok(fs.existsSync(path.join(dir, 'lamina.db')));
    const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(db.kysely);
    assert.equal(mode.rows[0]?.journal_mode, 'wal');
    const fk = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(db.kysely);
    assert.equal(fk.rows[0]?.foreign_keys, 1);

    const tables = await db.kysely.introspection.getTables();
    const cols = (t: string) => tables.find((x) => x.name === t)?.columns.map((c) => c.name).sort();
    assert.deepEqual(cols('functions'), ['created_at', 'current_version', 'name', 'next_version', 'updated_at']);
    assert.deepEqual(cols('versions'), ['code_entry', 'code_hash', 'created_at', 'manifest', 'name', 'packages_hash', 'size_bytes', 'version']);
    assert.deepEqual(cols('invocations'), [
      'billed_ms', 'cold', 'duration_ms', 'function', 'gb_seconds', 'init_ms', 'instance', 'logs', 'max_memory_mb',
      'memory_mb', 'request_id', 'started_at', 'status', 'status_code', 'trigger', 'version', 'worker',
    ]);
    const idx = await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'invocations'`.execute(db.kysely);
    assert.ok(idx.rows.some((r) => r.name === 'invocations_function_started_at'));
    assert.ok(idx.rows.some((r) => r.name === 'invocations_started_at'));

    // The typed table accepts a metering record as the metering layer writes it.
    await db.kysely
      .insertInto('invocations')
      .values({
        request_id: 'r1', function: 'f', version: 1, worker: 'w', instance: 'i', started_at: new Date().toISOString(),
        duration_ms: 1.5, billed_ms: 100, memory_mb: 128, max_memory_mb: 20.25, gb_seconds: 0.0125, cold: 1,
        init_ms: null, status: 'ok', status_code: 200, logs: '',
      })
      .execute();
    const row = await db.kysely.selectFrom('invocations').selectAll().executeTakeFirstOrThrow();
    assert.equal(row.duration_ms, 1.5);
    assert.equal(row.init_ms, null);
    assert.equal(row.trigger, 'http', 'migration 0005 defaults the trigger of records written without one');
  } finally {
    await db.close();
    await db.close(); // idempotent
  }
  const again = await openDatabase(dir); // migrations already applied: no error
  assert.equal((await again.kysely.selectFrom('invocations').select('request_id').execute()).length, 1);
  await again.close();
});

test('versions reference functions (foreign key enforced)', async () => {
  const db = await openDatabase(tempDir());
  try {
    await assert.rejects(
      db.kysely
        .insertInto('versions')
        .values({ name: 'ghost', version: 1, code_hash: 'h', manifest: '{}', code_entry: 'index.mjs', size_bytes: 1, created_at: '' })
        .execute(),
      /FOREIGN KEY/,
    );
  } finally {
    await db.close();
  }
});
