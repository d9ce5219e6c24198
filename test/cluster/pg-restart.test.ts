// A PostgreSQL restart (or any server-side end of a session: pg_terminate_backend,
// a failover) must not end a gateway or worker. Found by the cluster soak: a
// fast shutdown ends every session with "terminating connection due to
// administrator command"; a pooled connection that was checked out but between
// queries (inside a transaction) then emitted 'error' with no listener, and the
// whole process died. The pool must drop that connection and go on.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { sql } from 'kysely';
import type { Db } from '../../src/store/db.js';
import { openPostgres } from '../../src/store/postgres.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let tdb: TestDatabase;
let db: Db;
let admin: pg.Client;
before(async () => {
  tdb = await createTestDatabase('lamina_pgrestart');
  db = await openPostgres(tdb.url, { applicationName: 'lamina-pg-restart-test' });
  admin = new pg.Client({ connectionString: tdb.url });
  await admin.connect();
});
after(async () => {
  await admin?.end().catch(() => undefined);
  await db?.close().catch(() => undefined);
  await tdb?.drop();
});

test('a session ended by the server while checked out between queries does not crash the process; the pool recovers', async () => {
  // Any 'error' event without a listener would surface here as an uncaught exception.
  const uncaught: Error[] = [];
  const onUncaught = (err: Error) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    const failed = await db.kysely
      .transaction()
      .execute(async (trx) => {
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
        // Ended from outside, as a fast shutdown ends it, while this connection sits idle in its transaction.
        await admin.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
        // Let the server's notice reach the client before its next query.
        await new Promise((r) => setTimeout(r, 300));
        await sql`select 1`.execute(trx);
        return false;
      })
      .catch(() => true);
    assert.equal(failed, true, 'the transaction on the ended session fails');
    // Give a late 'error' event its chance to go uncaught.
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(uncaught.map((e) => e.message), []);
    // The broken connection left the pool: queries go on.
    for (let i = 0; i < 12; i++) {
      const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db.kysely);
      assert.equal(Number(rows[0]!.one), 1);
    }
  } finally {
    process.off('uncaughtException', onUncaught);
  }
});
