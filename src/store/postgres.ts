// The shared store of cluster mode: PostgreSQL through Kysely, with the same
// schema and migrations (src/store/migrations.ts) and the same queries as the
// embedded SQLite store, so the registry and metering code run unchanged.
//
// Notes on types: PostgreSQL returns bigint (int8) columns and aggregates such
// as count(*) and sum(integer) as strings; every reader here already passes
// numbers through Number(), so no global type parser is installed.
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Db } from './db.js';
import { migrateToLatest } from './migrations.js';
import type { Database } from './schema.js';

export interface PostgresOptions {
  /** Most connections this process opens (default 10). */
  poolSize?: number;
  /** Shown in pg_stat_activity. */
  applicationName?: string;
}

/** Whether a --database value names PostgreSQL. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** The URL with its password masked, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

/**
 * Opens a pool on a PostgreSQL database and brings it to the latest schema.
 * Fails with one clear line when the server cannot be reached or refuses the login.
 */
export async function openPostgres(url: string, opts: PostgresOptions = {}): Promise<Db> {
  if (!isPostgresUrl(url)) throw new Error(`the database URL must start with postgres:// or postgresql:// (got "${redactUrl(url)}")`);
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 10,
    application_name: opts.applicationName ?? 'lamina',
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client that loses its connection emits 'error' on the pool; without
  // a listener that would crash the process. The next query reconnects.
  pool.on('error', () => undefined);
  // A client checked out but between queries (in a transaction) that loses its session (a server
  // restart, pg_terminate_backend) emits 'error' on itself, not on the pool: without a listener that
  // ends the process. Its next query fails, and the pool drops it when it is released.
  pool.on('connect', (client) => client.on('error', () => undefined));
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await sql`select 1`.execute(kysely);
  } catch (err) {
    await kysely.destroy().catch(() => undefined);
    throw new Error(`cannot connect to PostgreSQL at ${redactUrl(url)}: ${(err as Error).message}`);
  }
  try {
    await migrateToLatest(kysely, 'postgres');
  } catch (err) {
    await kysely.destroy().catch(() => undefined);
    throw err;
  }
  let closed = false;
  return {
    kysely,
    dialect: 'postgres',
    async close() {
      if (closed) return;
      closed = true;
      await kysely.destroy(); // ends the pool
    },
  };
}
