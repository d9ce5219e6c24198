// Retention of the async queue: ended events (their status, result and error
// stay readable through GET /api/v1/invocations/:id) and fired schedule ticks
// are deleted once older than LAMINA_ASYNC_RETENTION_S, so the queue's table
// holds what is pending plus a bounded window of history instead of growing
// forever. Waiting and running events are never touched. Deletes go in small
// batches so a large backlog of history never holds the database for long;
// in a cluster every worker prunes, which is harmless (a row is deleted once).
import type { Db } from '../store/db.js';
import type { FinalStatus } from './queue.js';
import { Periodic } from '../util/periodic.js';

const ENDED: FinalStatus[] = ['Success', 'HandlerError', 'Timeout', 'SandboxCrashed', 'MemoryLimitExceeded', 'Expired', 'FunctionNotFound'];
/** Rows per DELETE: small enough that a pass never blocks accepts for long. */
const BATCH = 500;

export interface PruneResult {
  events: number;
  ticks: number;
}

/** Deletes ended events and fired ticks that ended before `cutoff` (epoch ms). */
export async function pruneBefore(db: Db, cutoff: number): Promise<PruneResult> {
  const out: PruneResult = { events: 0, ticks: 0 };
  for (;;) {
    const res = await db.kysely
      .deleteFrom('async_events')
      .where('request_id', 'in', (eb) =>
        eb.selectFrom('async_events').select('request_id').where('finished_at', '<', cutoff).where('status', 'in', ENDED).limit(BATCH),
      )
      .executeTakeFirst();
    const n = Number(res.numDeletedRows);
    out.events += n;
    if (n < BATCH) break;
  }
  // A tick row exists to make each firing unique across a cluster; a tick this
  // old is never fired again (missed ticks are not replayed), so its row can go.
  const ticks = await db.kysely.deleteFrom('schedule_ticks').where('fired_at', '<', cutoff).executeTakeFirst();
  out.ticks = Number(ticks.numDeletedRows);
  return out;
}

/** Prunes now and then every `everyMs` until stopped. */
export class Pruner extends Periodic {
  constructor(
    db: Db,
    retentionMs: number,
    log: (msg: string) => void,
    /** At most an hour, so a short retention is kept close to its word. */
    everyMs = Math.min(3_600_000, Math.max(1000, retentionMs / 10)),
  ) {
    super(
      () =>
        pruneBefore(db, Date.now() - retentionMs).then(
          (r) => {
            if (r.events + r.ticks > 0) log(`async queue: pruned ${r.events} ended event(s) and ${r.ticks} fired tick(s) past retention`);
          },
          (err: Error) => log(`async queue: pruning failed (${err.message}); will try again`),
        ),
      everyMs,
    );
  }
}
