// Persists invocation records and answers the admin API's questions about
// them. Records are buffered and written in batches (one transaction each), so
// metering costs the hot path an array push, not a disk write.
import type { Db } from '../store/db.js';
import type { Insertable, Selectable } from 'kysely';
import type { InvocationsTable } from '../store/schema.js';
import { cost, type Prices } from './billing.js';
import type { InvocationRecord, MeterSink } from './types.js';
import { ThreadWriter, type Row } from './writer-thread.js';

const FLUSH_EVERY_MS = 200;
const FLUSH_AT = 500;

export interface BillingLine {
  function: string;
  invocations: number;
  errors: number;
  coldStarts: number;
  billedMs: number;
  gbSeconds: number;
  cost: { compute: number; requests: number; total: number };
}

export interface BillingReport {
  since: string | null;
  until: string | null;
  granularityMs: number;
  prices: Prices;
  functions: BillingLine[];
  total: Omit<BillingLine, 'function'>;
}

function toRow(r: InvocationRecord): Insertable<InvocationsTable> {
  return {
    request_id: r.requestId,
    function: r.function,
    version: r.version,
    worker: r.worker,
    instance: r.instance,
    started_at: r.startedAt,
    duration_ms: r.durationMs,
    billed_ms: r.billedMs,
    memory_mb: r.memoryMb,
    max_memory_mb: r.maxMemoryMb,
    gb_seconds: r.gbSeconds,
    cold: r.cold ? 1 : 0,
    init_ms: r.initMs,
    status: r.status,
    status_code: r.statusCode,
    logs: r.logs,
    trigger: r.trigger ?? 'http',
  };
}

/** The first UTC day (YYYY-MM-DD) that starts at or after the ISO time `t`. */
function firstDayFrom(t: string): string {
  const day = t.slice(0, 10);
  return t === `${day}T00:00:00.000Z` ? day : new Date(Date.parse(`${day}T00:00:00.000Z`) + 86_400_000).toISOString().slice(0, 10);
}

function fromRow(row: Selectable<InvocationsTable>): InvocationRecord {
  return {
    requestId: row.request_id,
    function: row.function,
    version: Number(row.version),
    worker: row.worker,
    instance: row.instance,
    startedAt: row.started_at,
    durationMs: Number(row.duration_ms),
    billedMs: Number(row.billed_ms),
    memoryMb: Number(row.memory_mb),
    maxMemoryMb: Number(row.max_memory_mb),
    gbSeconds: Number(row.gb_seconds),
    cold: Boolean(Number(row.cold)),
    initMs: row.init_ms === null ? null : Number(row.init_ms),
    status: row.status as InvocationRecord['status'],
    statusCode: Number(row.status_code),
    logs: row.logs,
    trigger: (row.trigger ?? 'http') as InvocationRecord['trigger'],
  };
}

const COLUMNS = ['request_id', 'function', 'version', 'worker', 'instance', 'started_at', 'duration_ms', 'billed_ms', 'memory_mb', 'max_memory_mb', 'gb_seconds', 'cold', 'init_ms', 'status', 'status_code', 'logs', 'trigger'] as const;

/**
 * The embedded store's batch write: one statement prepared once, run per record in one
 * transaction. Kysely would compile and prepare the INSERT anew for every batch, which
 * was the largest share of the server's CPU under warm load (docs/benchmarks.md).
 * Parameters are positional (COLUMNS' order): a row is an array, which costs less to
 * build and to copy to the writer thread than an object with named keys.
 */
const INSERT_SQL = `INSERT INTO invocations (${COLUMNS.map((c) => `"${c}"`).join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')}) ON CONFLICT (request_id) DO NOTHING`;

/** A record's column values in COLUMNS' order. */
function rowValues(r: InvocationRecord): Row {
  return [r.requestId, r.function, r.version, r.worker, r.instance, r.startedAt, r.durationMs, r.billedMs, r.memoryMb, r.maxMemoryMb, r.gbSeconds, r.cold ? 1 : 0, r.initMs, r.status, r.statusCode, r.logs, r.trigger ?? 'http'];
}

function sqliteWriter(sqlite: NonNullable<Db['sqlite']>): (batch: InvocationRecord[]) => void {
  const insert = sqlite.prepare(INSERT_SQL);
  return sqlite.transaction((batch: InvocationRecord[]) => {
    for (const r of batch) insert.run(rowValues(r));
  });
}

export class InvocationStore implements MeterSink {
  private buffer: InvocationRecord[] = [];
  private writeSqlite: ((batch: InvocationRecord[]) => void) | undefined;
  /** A database file's batches go to a writer thread (writer-thread.ts); null once it failed or for `:memory:`. */
  private thread: ThreadWriter | null | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly prices: Prices,
    private readonly granularityMs: number,
    private readonly log: (msg: string) => void = () => undefined,
  ) {}

  record(r: InvocationRecord): void {
    this.buffer.push(r);
    if (this.buffer.length >= FLUSH_AT) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_EVERY_MS);
      this.timer.unref();
    }
  }

  /** Writes every buffered record; resolves when they are on disk. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.buffer.splice(0);
    const run = async () => {
      if (batch.length === 0) return;
      try {
        // Not inside a transaction Kysely holds open across an await (it would become part of it): that one waits its turn below.
        if (this.db.sqlite && !this.db.sqlite.inTransaction) {
          const thread = this.writerThread(this.db.sqlite);
          if (thread) {
            try {
              return await thread.write(batch.map(rowValues));
            } catch (err) {
              // A batch the thread could not commit is written here instead (ON CONFLICT keeps it once).
              this.log(`metering: the writer thread failed (${(err as Error).message}); writing on the server's thread`);
              if (!thread.usable) this.thread = null;
            }
          }
          this.writeSqlite ??= sqliteWriter(this.db.sqlite);
          return this.writeSqlite(batch);
        }
        await this.db.kysely.transaction().execute(async (tx) => {
          // SQLite caps bound parameters per statement; 16 columns x 50 rows stays well under it.
          for (let i = 0; i < batch.length; i += 50) {
            await tx.insertInto('invocations').values(batch.slice(i, i + 50).map(toRow)).onConflict((oc) => oc.column('request_id').doNothing()).execute();
          }
        });
      } catch (err) {
        this.log(`metering: could not write ${batch.length} records: ${(err as Error).message}`);
      }
    };
    this.flushing = this.flushing.then(run);
    return this.flushing;
  }

  /** Writes what is buffered and ends the writer thread. */
  async close(): Promise<void> {
    await this.flush();
    const thread = this.thread;
    this.thread = null;
    await thread?.close();
  }

  private writerThread(sqlite: NonNullable<Db['sqlite']>): ThreadWriter | null {
    if (this.thread === undefined) {
      try {
        this.thread = sqlite.memory ? null : new ThreadWriter(sqlite.name, INSERT_SQL);
      } catch (err) {
        this.log(`metering: no writer thread (${(err as Error).message}); writing on the server's thread`);
        this.thread = null;
      }
    }
    return this.thread;
  }

  async list(opts: { function?: string; limit: number; status?: string }): Promise<Omit<InvocationRecord, 'logs'>[]> {
    await this.flush();
    let q = this.db.kysely.selectFrom('invocations').selectAll();
    if (opts.function) q = q.where('function', '=', opts.function);
    if (opts.status) q = q.where('status', '=', opts.status);
    const rows = await q.orderBy('started_at', 'desc').orderBy('request_id').limit(opts.limit).execute();
    return rows.map((row) => {
      const { logs: _logs, ...rest } = fromRow(row);
      return rest;
    });
  }

  /** Records with their logs, newest first (for `lamina logs`). */
  async listWithLogs(opts: { function: string; limit: number }): Promise<InvocationRecord[]> {
    await this.flush();
    const rows = await this.db.kysely.selectFrom('invocations').selectAll().where('function', '=', opts.function).orderBy('started_at', 'desc').limit(opts.limit).execute();
    return rows.map(fromRow);
  }

  async get(requestId: string): Promise<InvocationRecord | undefined> {
    await this.flush();
    const row = await this.db.kysely.selectFrom('invocations').selectAll().where('request_id', '=', requestId).executeTakeFirst();
    return row ? fromRow(row) : undefined;
  }

  async billing(since: string | null, until: string | null): Promise<BillingReport> {
    await this.flush();
    let q = this.db.kysely
      .selectFrom('invocations')
      .select((eb) => [
        'function',
        eb.fn.countAll<number>().as('invocations'),
        eb.fn.sum<number>(eb.case().when('status', '!=', 'Success').then(1).else(0).end()).as('errors'),
        eb.fn.sum<number>('cold').as('coldStarts'),
        eb.fn.sum<number>('billed_ms').as('billedMs'),
        eb.fn.sum<number>('gb_seconds').as('gbSeconds'),
      ])
      .groupBy('function')
      .orderBy('function');
    if (since) q = q.where('started_at', '>=', since);
    if (until) q = q.where('started_at', '<', until);
    // Days whose records were pruned (retention.ts) count by day: those that start inside [since, until).
    let d = this.db.kysely
      .selectFrom('billing_days')
      .select((eb) => [
        'function',
        eb.fn.sum<number>('invocations').as('invocations'),
        eb.fn.sum<number>('errors').as('errors'),
        eb.fn.sum<number>('cold_starts').as('coldStarts'),
        eb.fn.sum<number>('billed_ms').as('billedMs'),
        eb.fn.sum<number>('gb_seconds').as('gbSeconds'),
      ])
      .groupBy('function');
    if (since) d = d.where('day', '>=', firstDayFrom(since));
    if (until) d = d.where('day', '<', firstDayFrom(until));
    const byFunction = new Map<string, Omit<BillingLine, 'cost'>>();
    for (const r of [...(await q.execute()), ...(await d.execute())]) {
      const line = byFunction.get(r.function) ?? { function: r.function, invocations: 0, errors: 0, coldStarts: 0, billedMs: 0, gbSeconds: 0 };
      line.invocations += Number(r.invocations ?? 0);
      line.errors += Number(r.errors ?? 0);
      line.coldStarts += Number(r.coldStarts ?? 0);
      line.billedMs += Number(r.billedMs ?? 0);
      line.gbSeconds += Number(r.gbSeconds ?? 0);
      byFunction.set(r.function, line);
    }
    const functions: BillingLine[] = [...byFunction.values()]
      .sort((a, b) => (a.function < b.function ? -1 : a.function > b.function ? 1 : 0))
      .map((l) => ({ ...l, cost: cost(this.prices, l.invocations, l.gbSeconds) }));
    const sum = (k: 'invocations' | 'errors' | 'coldStarts' | 'billedMs' | 'gbSeconds') => functions.reduce((n, f) => n + f[k], 0);
    const total = { invocations: sum('invocations'), errors: sum('errors'), coldStarts: sum('coldStarts'), billedMs: sum('billedMs'), gbSeconds: sum('gbSeconds') };
    return { since, until, granularityMs: this.granularityMs, prices: this.prices, functions, total: { ...total, cost: cost(this.prices, total.invocations, total.gbSeconds) } };
  }

  /** Start, duration and status of a function's calls since a time, oldest first, at most `limit` (the console's charts). */
  async timings(fn: string, since: string, limit: number): Promise<{ startedAt: string; durationMs: number; ok: boolean }[]> {
    await this.flush();
    const rows = await this.db.kysely
      .selectFrom('invocations')
      .select(['started_at', 'duration_ms', 'status'])
      .where('function', '=', fn)
      .where('started_at', '>=', since)
      .orderBy('started_at', 'desc')
      .limit(limit)
      .execute();
    return rows.reverse().map((r) => ({ startedAt: r.started_at, durationMs: Number(r.duration_ms), ok: r.status === 'Success' }));
  }
}
