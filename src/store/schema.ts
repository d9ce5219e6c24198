import type { Generated } from 'kysely';

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
  /** Package-cache entry (sha256 of the install inputs) of the version's dependencies; null without any. Migration 0003. */
  packages_hash: string | null;
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
  /** http | event | schedule | aws (migration 0005). */
  trigger: Generated<string>;
}

/** Cluster mode: compiled code by content hash (a .tar.gz of the code dir), fetched by workers. */
export interface CodeBlobsTable {
  hash: string;
  archive: Buffer;
  size_bytes: number;
  created_at: string;
}

/** Cluster mode: one row per worker id, kept up to date by its registrations and heartbeats. */
export interface WorkersTable {
  id: string;
  /** Where gateways reach its internal API. */
  url: string;
  /** Random per start: a new boot is a restart. */
  boot: string;
  /** up | draining | left */
  state: string;
  /** Heartbeat counter of this boot (gateways watch it change on their own clocks). */
  seq: number;
  /** Epoch ms of the last heartbeat, on the clock of the gateway that received it. */
  heartbeat_at: number;
  registered_at: string;
  /** JSON: what the worker can run (tiers). */
  info: string;
  /** JSON: its load and warm functions at the last heartbeat. */
  stats: string;
}

/** Invoke keys (src/keys): only a hash of each key is kept. */
export interface InvokeKeysTable {
  id: string;
  /** sha256 (hex) of the whole key. */
  key_hash: string;
  /** JSON array of function names, or ["*"]. */
  functions: string;
  created_at: string;
}


/** The durable async queue (src/triggers): one row per accepted event, kept after it ends as its record. Migration 0005. */
export interface AsyncEventsTable {
  request_id: string;
  function: string;
  /** The event as JSON text. */
  event: string;
  /** event | schedule | aws */
  trigger: string;
  /** Queued | Running | Success | HandlerError | Timeout | SandboxCrashed | MemoryLimitExceeded | Expired | FunctionNotFound */
  status: string;
  /** Attempts started (a lost attempt of a crashed worker is given back). */
  attempts: number;
  /** Epoch ms. */
  enqueued_at: number;
  /** Not claimable before this (epoch ms): the retry backoff. */
  available_at: number;
  /** A Running event whose lease ran out is taken over (epoch ms). */
  lease_until: number | null;
  /** Who runs it (worker id and boot). */
  owner: string | null;
  /** 1 for calls to a destination: they never trigger destinations themselves. */
  no_destinations: number;
  /** The stored version the call was pinned to (name:3, an alias); null: the current one when it runs. */
  version: number | null;
  /** JSON of the return value (Success). */
  result: string | null;
  /** JSON {type, message, stack?} of the last failure. */
  error: string | null;
  finished_at: number | null;
}

/** One row per schedule tick that fired: the unique key makes a tick fire once across a cluster. Migration 0005. */
export interface ScheduleTicksTable {
  function: string;
  /** The schedule's index and cron expression in the manifest. */
  schedule: string;
  /** Epoch ms of the tick. */
  tick: number;
  request_id: string;
  fired_at: number;
}

/** Migration 0006: versions published through PublishVersion (AWS API) or `lamina publish`. */
export interface PublishedVersionsTable {
  name: string;
  version: number;
  description: string;
  created_at: string;
}

/** Migration 0006: an alias names a version, optionally sending `extra_weight` (0..1) of calls to `extra_version`. */
export interface AliasesTable {
  name: string;
  alias: string;
  version: number;
  extra_version: number | null;
  extra_weight: number | null;
  description: string;
  revision_id: string;
  created_at: string;
  updated_at: string;
}

/** Migration 0006: AWS-only settings of a function, kept to answer them back. */
export interface AwsFunctionsTable {
  name: string;
  role: string;
  description: string;
  /** The Runtime string the function was created with (e.g. nodejs22.x), answered back as given. */
  runtime: string;
  /** The Handler string as given (e.g. pkg.mod.handler), answered back while it names the same entry. */
  handler: string;
}

/** One function's metered calls of one UTC day, kept after the day's invocation records are pruned (src/metering/retention.ts). */
export interface BillingDaysTable {
  function: string;
  /** YYYY-MM-DD, UTC. */
  day: string;
  invocations: number;
  errors: number;
  cold_starts: number;
  billed_ms: number;
  gb_seconds: number;
}

export interface Database {
  async_events: AsyncEventsTable;
  schedule_ticks: ScheduleTicksTable;
  invoke_keys: InvokeKeysTable;
  functions: FunctionsTable;
  versions: VersionsTable;
  invocations: InvocationsTable;
  code_blobs: CodeBlobsTable;
  workers: WorkersTable;
  published_versions: PublishedVersionsTable;
  aliases: AliasesTable;
  aws_functions: AwsFunctionsTable;
  billing_days: BillingDaysTable;
}
