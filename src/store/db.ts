// The embedded store: one SQLite file per data dir, opened through Kysely so
// the same queries run later on PostgreSQL.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database } from './schema.js';
import { migrateToLatest } from './migrations.js';
import { withStatementCache } from './statement-cache.js';

export type { Database, FunctionsTable, VersionsTable, InvocationsTable, CodeBlobsTable, WorkersTable } from './schema.js';

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly dialect: 'sqlite' | 'postgres';
  /** The embedded store's better-sqlite3 handle, for a hot write that runs as one prepared statement (metering). */
  readonly sqlite?: SQLite.Database;
  close(): Promise<void>;
}

export async function openDatabase(dataDir: string): Promise<Db> {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, 'lamina.db');
  // The database holds invocation payloads and key hashes: owner-only, also for
  // files made before this rule (SQLite gives its -wal and -shm files the same mode).
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  fs.chmodSync(file, 0o600);
  for (const side of ['-wal', '-shm']) if (fs.existsSync(file + side)) fs.chmodSync(file + side, 0o600);
  const sqlite = new SQLite(file);
  try {
    // WAL: readers never block the writer (metering writes while the admin API reads).
    sqlite.pragma('journal_mode = WAL');
    // A second process (e.g. a CLI command) may hold the write lock briefly.
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    // Safe with WAL: a power cut may lose the last commits, never corrupt the file.
    sqlite.pragma('synchronous = NORMAL');
  } catch (err) {
    sqlite.close();
    throw err;
  }
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  try {
    await migrateToLatest(kysely, 'sqlite');
  } catch (err) {
    await kysely.destroy();
    throw err;
  }
  let closed = false;
  return {
    kysely,
    dialect: 'sqlite',
    sqlite,
    async close() {
      if (closed) return;
      closed = true;
      await kysely.destroy(); // closes the better-sqlite3 handle too
    },
  };
}
