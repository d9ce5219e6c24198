// Kysely typings of the tables. Column names are a contract shared with the
// metering layer (invocations) and with the PostgreSQL dialect: change them
// only through a migration.

/** One row per function name; survives `remove` as a tombstone (current_version null) so version numbers are never reused. */
export interface FunctionsTable {
  name: string;
  /** null once the function is removed. */
  current_version: number | null;
  /** The number the next deploy gets. */
  next_version: number;
  /** ISO 8601 timestamps (text: portable and sortable). */
  created_at: string;
  updated_at: string;
}

export interface VersionsTable {
  name: string;
  version: number;
  code_hash: string;
  /** The validated Manifest as JSON text. */
  manifest: string;
  /** File inside the code dir that the runtime loads. */
  code_entry: string;
  size_bytes: number;
  created_at: string;
}

/** One metering record per invocation. */
export interface InvocationsTable {
  request_id: string;
  function: string;
  version: number;
  worker: string;
  instance: string;
  /** ISO 8601. */
  started_at: string;
  duration_ms: number;
  billed_ms: number;
  memory_mb: number;
  max_memory_mb: number;
  gb_seconds: number;
  /** 1 = cold start, 0 = warm (integer: SQLite has no boolean and better-sqlite3 cannot bind one). */
  cold: number;
  init_ms: number | null;
  status: string;
  status_code: number;
  logs: string;
}

export interface Database {
  functions: FunctionsTable;
  versions: VersionsTable;
  invocations: InvocationsTable;
}
