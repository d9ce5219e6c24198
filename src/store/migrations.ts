// Schema migrations, in code so that SQLite (embedded) and PostgreSQL (shared)
// run the same ones. Only portable types: text, integer, bigint, double
// precision; binary data is the one type whose name differs (blob / bytea).
// On PostgreSQL, Kysely's migrator takes an advisory lock, so a gateway and
// its workers may all start (and migrate) at once.
import { Migrator, type Kysely, type Migration } from 'kysely';

export type Dialect = 'sqlite' | 'postgres';

const migrationsFor = (dialect: Dialect): Record<string, Migration> => ({
  '0001_initial': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('functions')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('current_version', 'integer')
        .addColumn('next_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('versions')
        .addColumn('name', 'text', (c) => c.notNull().references('functions.name').onDelete('cascade'))
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('code_hash', 'text', (c) => c.notNull())
        .addColumn('manifest', 'text', (c) => c.notNull())
        .addColumn('code_entry', 'text', (c) => c.notNull())
        .addColumn('size_bytes', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('versions_pk', ['name', 'version'])
        .execute();

      // No foreign key to functions: billing records outlive deleted functions.
      // `double precision` rather than `real`: real is 4-byte in PostgreSQL.
      await db.schema
        .createTable('invocations')
        .addColumn('request_id', 'text', (c) => c.primaryKey())
        .addColumn('function', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('worker', 'text', (c) => c.notNull())
        .addColumn('instance', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('duration_ms', 'double precision', (c) => c.notNull())
        .addColumn('billed_ms', 'integer', (c) => c.notNull())
        .addColumn('memory_mb', 'integer', (c) => c.notNull())
        .addColumn('max_memory_mb', 'double precision', (c) => c.notNull())
        .addColumn('gb_seconds', 'double precision', (c) => c.notNull())
        .addColumn('cold', 'integer', (c) => c.notNull())
        .addColumn('init_ms', 'double precision')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('status_code', 'integer', (c) => c.notNull())
        .addColumn('logs', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
      await db.schema
        .createIndex('invocations_function_started_at')
        .on('invocations')
        .columns(['function', 'started_at'])
        .execute();
      await db.schema.createIndex('invocations_started_at').on('invocations').column('started_at').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('invocations').execute();
      await db.schema.dropTable('versions').execute();
      await db.schema.dropTable('functions').execute();
    },
  },
  // Cluster mode (docs/cluster.md): code distributed by hash, worker membership.
  // Created on SQLite too, so both modes share one schema.
  '0002_cluster': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('code_blobs')
        .addColumn('hash', 'text', (c) => c.primaryKey())
        .addColumn('archive', dialect === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
        .addColumn('size_bytes', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('workers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('boot', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
        .addColumn('registered_at', 'text', (c) => c.notNull())
        .addColumn('info', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('stats', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('workers').execute();
      await db.schema.dropTable('code_blobs').execute();
    },
  },
  // Package-aware deploys (src/packages): the package-cache entry each version uses.
  '0003_packages': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('versions').addColumn('packages_hash', 'text').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('versions').dropColumn('packages_hash').execute();
    },
  },
  // HTTP functions (src/keys): invoke keys for functions with "auth": "token".
  '0004_invoke_keys': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('invoke_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('functions', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('invoke_keys').execute();
    },
  },
  // Async calls and schedules (src/triggers): the durable queue, fired ticks, and each record's trigger.
  '0005_async': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('invocations').addColumn('trigger', 'text', (c) => c.notNull().defaultTo('http')).execute();
      await db.schema
        .createTable('async_events')
        .addColumn('request_id', 'text', (c) => c.primaryKey())
        .addColumn('function', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('trigger', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('enqueued_at', 'bigint', (c) => c.notNull())
        .addColumn('available_at', 'bigint', (c) => c.notNull())
        .addColumn('lease_until', 'bigint')
        .addColumn('owner', 'text')
        .addColumn('no_destinations', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('result', 'text')
        .addColumn('error', 'text')
        .addColumn('finished_at', 'bigint')
        .execute();
      await db.schema.createIndex('async_events_status_available').on('async_events').columns(['status', 'available_at']).execute();
      await db.schema.createIndex('async_events_function_status').on('async_events').columns(['function', 'status']).execute();
      await db.schema
        .createTable('schedule_ticks')
        .addColumn('function', 'text', (c) => c.notNull())
        .addColumn('schedule', 'text', (c) => c.notNull())
        .addColumn('tick', 'bigint', (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('fired_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('schedule_ticks_pk', ['function', 'schedule', 'tick'])
        .execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('schedule_ticks').execute();
      await db.schema.dropTable('async_events').execute();
      await db.schema.alterTable('invocations').dropColumn('trigger').execute();
    },
  },
  // AWS Lambda API (src/gateway/aws, src/versions): published versions,
  // aliases (with an optional weighted second version) and the AWS-only
  // settings of a function (Role, Description) that Lamina itself ignores.
  '0006_aws': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('published_versions')
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('published_versions_pk', ['name', 'version'])
        .execute();
      await db.schema
        .createTable('aliases')
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('alias', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('extra_version', 'integer')
        .addColumn('extra_weight', 'double precision')
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('revision_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('aliases_pk', ['name', 'alias'])
        .execute();
      await db.schema
        .createTable('aws_functions')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('role', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('runtime', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('handler', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('aws_functions').execute();
      await db.schema.dropTable('aliases').execute();
      await db.schema.dropTable('published_versions').execute();
    },
  },
  // Retention of the async queue (src/triggers/retention.ts): ended events and
  // fired ticks are deleted by age, so both are looked up by their end time.
  // Partial: a waiting event (no end time yet) costs an accept no index write.
  '0007_async_retention': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.createIndex('async_events_finished').on('async_events').column('finished_at').where('finished_at', 'is not', null).execute();
      await db.schema.createIndex('schedule_ticks_fired').on('schedule_ticks').column('fired_at').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropIndex('schedule_ticks_fired').execute();
      await db.schema.dropIndex('async_events_finished').execute();
    },
  },
  // An async call pinned to a version (`POST /run/NAME:3` with Event, the AWS API's Qualifier)
  // keeps it: the event runs that version, not whichever is current when it is claimed.
  '0008_async_version': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('async_events').addColumn('version', 'integer').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('async_events').dropColumn('version').execute();
    },
  },
  // Retention of invocation records (src/metering/retention.ts): a record past the window is
  // deleted, its billing figures added to its function's day first, so the bill outlives it.
  '0009_billing_days': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('billing_days')
        .addColumn('function', 'text', (c) => c.notNull())
        .addColumn('day', 'text', (c) => c.notNull())
        .addColumn('invocations', 'bigint', (c) => c.notNull())
        .addColumn('errors', 'bigint', (c) => c.notNull())
        .addColumn('cold_starts', 'bigint', (c) => c.notNull())
        .addColumn('billed_ms', 'bigint', (c) => c.notNull())
        .addColumn('gb_seconds', 'double precision', (c) => c.notNull())
        .addPrimaryKeyConstraint('billing_days_pk', ['function', 'day'])
        .execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('billing_days').execute();
    },
  },
});

/** Brings any Kysely database (SQLite or PostgreSQL) to the latest schema. */
export async function migrateToLatest(db: Kysely<any>, dialect: Dialect = 'sqlite'): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrationsFor(dialect) },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`database migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
