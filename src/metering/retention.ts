// Retention of invocation records. Every call leaves a record with its logs, so
// without a window the database grows forever. Records whose call started before
// the window (LAMINA_INVOCATIONS_RETENTION_S, 30 days by default; 0 keeps them
// all) are deleted in small batches, and each batch's billing figures are added
// to its functions' days (billing_days) in the same transaction: the bill keeps
// every call, at the granularity of a UTC day once its records are gone. The
// cutoff is a UTC midnight, so a day is either wholly in the records or wholly
// in billing_days. The figures added are those of the rows this transaction
// deleted (DELETE ... RETURNING), so concurrent pruners (every worker of a
// cluster prunes) never count a record twice.
import type { Db } from '../store/db.js';
import type { BillingDaysTable } from '../store/schema.js';
import { Periodic } from '../util/periodic.js';

/** Rows per transaction: a pass never holds the database for long. */
const BATCH = 500;
const DAY_MS = 86_400_000;

export const DEFAULT_RETENTION_S = 30 * 86_400;

/** LAMINA_INVOCATIONS_RETENTION_S in ms (0: keep every record); at least a day, since billing keeps days. */
export function invocationRetentionMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.LAMINA_INVOCATIONS_RETENTION_S;
  if (raw === undefined || raw === '') return DEFAULT_RETENTION_S * 1000;
  const n = Number(raw);
  if (!Number.isFinite(n) || (n !== 0 && (n < 86_400 || n > 315_360_000))) {
    throw new Error(`LAMINA_INVOCATIONS_RETENTION_S must be 0 (keep every record) or a number of seconds from 86400 to 315360000 (got "${raw}")`);
  }
  return n * 1000;
}

/** The UTC midnight at or before `now - retentionMs`, as an ISO time (records start before it are pruned). */
export function cutoffFor(now: number, retentionMs: number): string {
  return new Date(Math.floor((now - retentionMs) / DAY_MS) * DAY_MS).toISOString();
}


/** Deletes the records of calls started before `cutoff` (ISO), adding them to billing_days; returns how many. */
export async function pruneInvocationsBefore(db: Db, cutoff: string): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await db.kysely.transaction().execute(async (trx) => {
      const gone = await trx
        .deleteFrom('invocations')
        .where('request_id', 'in', (eb) => eb.selectFrom('invocations').select('request_id').where('started_at', '<', cutoff).limit(BATCH))
        .returning(['function', 'started_at', 'status', 'cold', 'billed_ms', 'gb_seconds'])
        .execute();
      const days = new Map<string, BillingDaysTable>();
      for (const r of gone) {
        const day = r.started_at.slice(0, 10);
        const key = `${r.function}\0${day}`;
        let d = days.get(key);
        if (!d) days.set(key, (d = { function: r.function, day, invocations: 0, errors: 0, cold_starts: 0, billed_ms: 0, gb_seconds: 0 }));
        d.invocations += 1;
        if (r.status !== 'Success') d.errors += 1;
        d.cold_starts += Number(r.cold);
        d.billed_ms += Number(r.billed_ms);
        d.gb_seconds += Number(r.gb_seconds);
      }
      for (const d of days.values()) {
        await trx
          .insertInto('billing_days')
          .values(d)
          .onConflict((oc) =>
            oc.columns(['function', 'day']).doUpdateSet((eb) => ({
              invocations: eb('billing_days.invocations', '+', eb.ref('excluded.invocations')),
              errors: eb('billing_days.errors', '+', eb.ref('excluded.errors')),
              cold_starts: eb('billing_days.cold_starts', '+', eb.ref('excluded.cold_starts')),
              billed_ms: eb('billing_days.billed_ms', '+', eb.ref('excluded.billed_ms')),
              gb_seconds: eb('billing_days.gb_seconds', '+', eb.ref('excluded.gb_seconds')),
            })),
          )
          .execute();
      }
      return gone.length;
    });
    total += n;
    if (n < BATCH) return total;
  }
}

/** Prunes at start and then every hour (or a tenth of the window, if shorter) until stopped; a window of 0 never prunes. */
export class InvocationPruner extends Periodic {
  constructor(
    db: Db,
    private readonly retentionMs: number,
    log: (msg: string) => void,
    /** Records buffered in memory go to the database first, so none is pruned after its day was rolled up. */
    flush: () => Promise<void> = async () => undefined,
    everyMs = Math.min(3_600_000, Math.max(1000, retentionMs / 10)),
  ) {
    super(
      () =>
        flush()
          .then(() => pruneInvocationsBefore(db, cutoffFor(Date.now(), retentionMs)))
          .then(
            (n) => {
              if (n > 0) log(`metering: pruned ${n} invocation record(s) past retention (their billing kept by day)`);
            },
            (err: Error) => log(`metering: pruning invocation records failed (${err.message}); will try again`),
          ),
      everyMs,
    );
  }

  override start(): void {
    if (this.retentionMs > 0) super.start();
  }
}
