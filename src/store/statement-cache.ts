// Prepared statements kept for reuse. Kysely's SQLite driver prepares every
// query it runs, and on the hot paths (async accepts and completions, metering
// flushes) preparing cost as much as running: the same few SQL texts come back
// thousands of times a second. The driver holds its one connection for the
// whole of a query (or a streamed select), so a cached statement is never in
// use twice at once. Bounded, least recently used first out: SQL texts with
// IN lists of many lengths must not grow it without end.
import type { Database as SQLiteDatabase, Statement } from 'better-sqlite3';
import type { SqliteDatabase } from 'kysely';

export function withStatementCache(sqlite: SQLiteDatabase, max = 256): SqliteDatabase {
  const cache = new Map<string, Statement>();
  return {
    close: () => {
      cache.clear();
      sqlite.close();
    },
    prepare(sql: string) {
      let stmt = cache.get(sql);
      if (stmt) {
        // Most recently used last, so the first key is the one to evict.
        cache.delete(sql);
      } else {
        stmt = sqlite.prepare(sql);
        if (cache.size >= max) cache.delete(cache.keys().next().value!);
      }
      cache.set(sql, stmt);
      return stmt;
    },
  };
}
