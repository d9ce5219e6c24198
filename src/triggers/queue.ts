// The durable async queue: one `async_events` row per accepted event, in the
// node's SQLite database or the cluster's PostgreSQL, through the same Kysely
// queries. An event is claimed by flipping it to Running under a lease that its
// owner renews; a lease that runs out (the owner died) puts it back in the
// queue, so every accepted event runs at least once. On PostgreSQL, claims
// lock rows with FOR UPDATE SKIP LOCKED, so dispatchers on many workers never
// take the same event and never wait for each other.
import { EventEmitter } from 'node:events';
import { type Selectable, type Transaction } from 'kysely';
import type { Database, Db } from '../store/db.js';
import { newRequestId } from '../util/request-id.js';
import type { AsyncEventsTable } from '../store/schema.js';
import type { InvocationTrigger } from '../worker/invoke-options.js';
import type { FailureInfo } from './destination.js';

export type FinalStatus = 'Success' | 'HandlerError' | 'Timeout' | 'SandboxCrashed' | 'MemoryLimitExceeded' | 'Expired' | 'FunctionNotFound';
export type AsyncStatus = 'Queued' | 'Running' | FinalStatus;

export interface EnqueueRequest {
  function: string;
  event: unknown;
  /** Default "event". */
  trigger?: Exclude<InvocationTrigger, 'http'>;
  /** Default: a new UUID. */
  requestId?: string;
  /** Calls to a destination never trigger destinations themselves (no loops). */
  noDestinations?: boolean;
  /** Run this stored version (a pinned call); default: the current one when the event runs. */
  version?: number;
}

/** A claimed event, as its dispatcher sees it. */
export interface ClaimedEvent {
  requestId: string;
  function: string;
  event: unknown;
  trigger: Exclude<InvocationTrigger, 'http'>;
  /** Attempts started, this one included. */
  attempts: number;
  enqueuedAt: number;
  noDestinations: boolean;
  /** The previous attempt's failure, if any. */
  lastError: FailureInfo | null;
  /** The stored version the call was pinned to; undefined: the current one. */
  version?: number;
}

/** The queue's view of one event, for GET /api/v1/invocations/:requestId. */
export interface AsyncEventView {
  requestId: string;
  function: string;
  trigger: string;
  status: AsyncStatus;
  attempts: number;
  enqueuedAt: string;
  finishedAt: string | null;
  /** The return value (Success). */
  result?: unknown;
  /** The last failure. */
  error?: FailureInfo;
}

export interface QueueFunctionStats {
  function: string;
  /** Events waiting (Queued, retries in backoff included). */
  depth: number;
  /** Events being run. */
  inflight: number;
  /** Age of the oldest waiting or running event, in seconds (0 when none). */
  oldestAgeS: number;
}

/** How an event ended. */
export interface FinishRequest {
  status: FinalStatus;
  attempts?: number;
  result?: unknown;
  error?: FailureInfo | null;
  followUp?: FollowUp;
}

/** Another event to enqueue in the same transaction as a completion (a destination call). */
export interface FollowUp {
  function: string;
  event: unknown;
}

type Row = Selectable<AsyncEventsTable>;

function parse(text: string | null): unknown {
  if (text === null) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function toClaimed(r: Row, attempts: number): ClaimedEvent {
  return {
    requestId: r.request_id,
    function: r.function,
    event: parse(r.event) ?? {},
    trigger: r.trigger as ClaimedEvent['trigger'],
    attempts,
    enqueuedAt: Number(r.enqueued_at),
    noDestinations: Number(r.no_destinations) === 1,
    lastError: (parse(r.error) as FailureInfo | undefined) ?? null,
    ...(r.version !== null && r.version !== undefined ? { version: Number(r.version) } : {}),
  };
}

/** Most rows in one group-committed insert (SQLite's bound-parameter cap: 15 columns x 60 rows stays under it). */
const GROUP_MAX = 60;

export class AsyncQueue extends EventEmitter<{ enqueued: [name: string] }> {
  /** Events accepted in the current turn of the event loop, committed together (group commit). */
  private group: { row: AsyncEventsTable; resolve: () => void; reject: (e: unknown) => void }[] = [];
  /** Events ended in the current turn, committed together. */
  private finishing: { ev: ClaimedEvent; owner: string; f: FinishRequest; resolve: (done: boolean) => void; reject: (e: unknown) => void }[] = [];

  constructor(private readonly db: Db) {
    super();
  }

  /**
   * Stores an event durably; resolves with its request id once committed.
   * Events accepted in the same turn of the event loop share one INSERT (one
   * commit), so 32 concurrent accepts cost one write, not 32; none resolves
   * before the commit that holds it.
   */
  async enqueue(req: EnqueueRequest): Promise<string> {
    const requestId = req.requestId ?? newRequestId();
    const row = this.row(req, requestId, Date.now());
    await new Promise<void>((resolve, reject) => {
      this.group.push({ row, resolve, reject });
      if (this.group.length === 1) setImmediate(() => void this.commitGroup());
    });
    this.emit('enqueued', req.function);
    return requestId;
  }

  private async commitGroup(): Promise<void> {
    const batch = this.group.splice(0);
    for (let i = 0; i < batch.length; i += GROUP_MAX) {
      const part = batch.slice(i, i + GROUP_MAX);
      try {
        await this.db.kysely.insertInto('async_events').values(part.map((p) => p.row)).execute();
        for (const p of part) p.resolve();
      } catch (err) {
        // One bad row (a duplicate request id) must not fail the others: retry them one by one.
        if (part.length === 1) part[0]!.reject(err);
        else
          for (const p of part)
            await this.db.kysely
              .insertInto('async_events')
              .values(p.row)
              .execute()
              .then(p.resolve, p.reject);
      }
    }
  }

  /** Enqueues inside a caller's transaction (schedule ticks, destinations); the caller emits. */
  async enqueueIn(trx: Transaction<Database>, req: EnqueueRequest, now = Date.now()): Promise<string> {
    const requestId = req.requestId ?? newRequestId();
    await trx.insertInto('async_events').values(this.row(req, requestId, now)).execute();
    return requestId;
  }

  private row(req: EnqueueRequest, requestId: string, now: number): AsyncEventsTable {
    return {
      request_id: requestId,
      function: req.function,
      event: JSON.stringify(req.event === undefined ? {} : req.event),
      trigger: req.trigger ?? 'event',
      status: 'Queued',
      attempts: 0,
      enqueued_at: now,
      available_at: now,
      lease_until: null,
      owner: null,
      no_destinations: req.noDestinations ? 1 : 0,
      version: req.version ?? null,
      result: null,
      error: null,
      finished_at: null,
    };
  }

  /**
   * Takes up to `limit` due events and marks them Running for `owner` under a
   * lease. Functions in `skip` are left alone (their async share is full);
   * those in `prefer` come first (warm here: the sticky preference).
   */
  async claim(owner: string, limit: number, leaseMs: number, skip: string[] = [], prefer: string[] = []): Promise<ClaimedEvent[]> {
    if (limit <= 0) return [];
    // Sticky preference as a first, narrower claim (an ORDER BY CASE would sort the whole backlog).
    const first = prefer.length ? await this.claimSome(owner, limit, leaseMs, skip, prefer.filter((f) => !skip.includes(f))) : [];
    if (first.length >= limit) return first;
    return [...first, ...(await this.claimSome(owner, limit - first.length, leaseMs, skip))];
  }

  private async claimSome(owner: string, limit: number, leaseMs: number, skip: string[], only?: string[]): Promise<ClaimedEvent[]> {
    if (only && only.length === 0) return [];
    const now = Date.now();
    // One statement: UPDATE ... WHERE id IN (SELECT ... [FOR UPDATE SKIP LOCKED] LIMIT n) RETURNING *.
    // On PostgreSQL the locked subquery makes concurrent claimers skip each other's rows.
    // Ordered by available_at alone so the (status, available_at) index serves it without a sort.
    const postgres = this.db.dialect === 'postgres';
    let update = this.db.kysely
      .updateTable('async_events')
      .set((eb) => ({ status: 'Running', owner, lease_until: now + leaseMs, attempts: eb('attempts', '+', 1) }))
      .where('request_id', 'in', (eb) => {
        let q = eb.selectFrom('async_events').select('request_id').where('status', '=', 'Queued').where('available_at', '<=', now);
        if (only) q = q.where('function', 'in', only);
        if (skip.length) q = q.where('function', 'not in', skip);
        q = q.orderBy('available_at').limit(limit);
        if (postgres) q = q.forUpdate().skipLocked();
        return q;
      });
    // A second status check belongs only to PostgreSQL (where it costs nothing). On SQLite the
    // statement is atomic anyway, and the check made the planner walk every queued row through
    // the status index instead of looking the few chosen ids up by key: 2.5 ms a claim with a
    // backlog of 25,000 events, most of a drain's time.
    if (postgres) update = update.where('status', '=', 'Queued');
    const rows = await update.returningAll().execute();
    return rows.sort((a, b) => Number(a.available_at) - Number(b.available_at)).map((r) => toClaimed(r, Number(r.attempts)));
  }

  /** Extends the leases of the events `owner` holds. */
  async renew(owner: string, requestIds: string[], leaseMs: number): Promise<void> {
    for (let i = 0; i < requestIds.length; i += 200) {
      await this.db.kysely
        .updateTable('async_events')
        .set({ lease_until: Date.now() + leaseMs })
        .where('owner', '=', owner)
        .where('status', '=', 'Running')
        .where('request_id', 'in', requestIds.slice(i, i + 200))
        .execute();
    }
  }

  /**
   * Puts Running events whose lease ran out back in the queue (their owner
   * died or lost the database). The cut attempt is given back, so a retry
   * budget of 0 still lets the event run. `owner` limits it to one owner's
   * events regardless of their leases (a node restarting on its own SQLite).
   */
  async takeOver(opts: { all?: boolean } = {}): Promise<number> {
    const now = Date.now();
    let q = this.db.kysely
      .updateTable('async_events')
      .set((eb) => ({ status: 'Queued', owner: null, lease_until: null, available_at: now, attempts: eb('attempts', '-', 1) }))
      .where('status', '=', 'Running');
    if (!opts.all) q = q.where('lease_until', '<', now);
    const res = await q.executeTakeFirst();
    const n = Number(res.numUpdatedRows);
    if (n > 0) this.emit('enqueued', '*');
    return n;
  }

  /** Ends an event with a final status; `followUp` (a destination call) is enqueued in the same transaction. */
  async finish(ev: ClaimedEvent, owner: string, f: FinishRequest): Promise<boolean> {
    const done = await new Promise<boolean>((resolve, reject) => {
      this.finishing.push({ ev, owner, f, resolve, reject });
      if (this.finishing.length === 1) setImmediate(() => void this.commitFinishes());
    });
    if (done && f.followUp) this.emit('enqueued', f.followUp.function);
    return done;
  }

  /**
   * Ends the events finished in one turn of the event loop in one transaction
   * (one commit, as accepts share theirs): a busy dispatcher ends hundreds of
   * events a second, and a commit per event was most of the queue's cost.
   */
  private async commitFinishes(): Promise<void> {
    const batch = this.finishing.splice(0);
    try {
      const done = await this.db.kysely.transaction().execute(async (trx) => {
        const out: boolean[] = [];
        for (const p of batch) out.push(await this.finishIn(trx, p.ev, p.owner, p.f));
        return out;
      });
      batch.forEach((p, i) => p.resolve(done[i]!));
    } catch (err) {
      // One bad follow-up must not fail the others: end them one by one.
      if (batch.length === 1) return batch[0]!.reject(err);
      for (const p of batch) await this.db.kysely.transaction().execute((trx) => this.finishIn(trx, p.ev, p.owner, p.f)).then(p.resolve, p.reject);
    }
  }

  private async finishIn(trx: Transaction<Database>, ev: ClaimedEvent, owner: string, f: FinishRequest): Promise<boolean> {
    const res = await trx
      .updateTable('async_events')
      .set({
        status: f.status,
        attempts: f.attempts ?? ev.attempts,
        owner: null,
        lease_until: null,
        result: f.status === 'Success' ? JSON.stringify(f.result === undefined ? null : f.result) : null,
        error: f.error ? JSON.stringify(f.error) : null,
        finished_at: Date.now(),
      })
      .where('request_id', '=', ev.requestId)
      .where('owner', '=', owner)
      .where('status', '=', 'Running')
      .executeTakeFirst();
    // Lost the lease meanwhile: whoever took the event over records its end.
    if (Number(res.numUpdatedRows) === 0) return false;
    if (f.followUp) await this.enqueueIn(trx, { function: f.followUp.function, event: f.followUp.event, trigger: 'event', noDestinations: true });
    return true;
  }

  /**
   * Puts an event back in the queue until `availableAt`. With `error` it was a
   * failed attempt (a retry); without, it never ran (the function was busy), and
   * the attempt is given back.
   */
  async requeue(ev: ClaimedEvent, owner: string, availableAt: number, error?: FailureInfo): Promise<void> {
    await this.db.kysely
      .updateTable('async_events')
      .set({
        status: 'Queued',
        owner: null,
        lease_until: null,
        available_at: availableAt,
        attempts: error ? ev.attempts : ev.attempts - 1,
        ...(error ? { error: JSON.stringify(error) } : {}),
      })
      .where('request_id', '=', ev.requestId)
      .where('owner', '=', owner)
      .where('status', '=', 'Running')
      .execute();
  }

  async get(requestId: string): Promise<AsyncEventView | undefined> {
    const r = await this.db.kysely.selectFrom('async_events').selectAll().where('request_id', '=', requestId).executeTakeFirst();
    if (!r) return undefined;
    const view: AsyncEventView = {
      requestId: r.request_id,
      function: r.function,
      trigger: r.trigger,
      status: r.status as AsyncStatus,
      attempts: Number(r.attempts),
      enqueuedAt: new Date(Number(r.enqueued_at)).toISOString(),
      finishedAt: r.finished_at === null ? null : new Date(Number(r.finished_at)).toISOString(),
    };
    if (r.status === 'Success') view.result = parse(r.result) ?? null;
    const error = parse(r.error) as FailureInfo | undefined;
    if (error && r.status !== 'Success') view.error = error;
    return view;
  }

  /** Depth, in-flight count and oldest age per function with any waiting or running event. */
  async stats(now = Date.now()): Promise<QueueFunctionStats[]> {
    const rows = await this.db.kysely
      .selectFrom('async_events')
      .select((eb) => ['function', 'status', eb.fn.countAll<number>().as('n'), eb.fn.min<number>('enqueued_at').as('oldest')])
      .where('status', 'in', ['Queued', 'Running'])
      .groupBy(['function', 'status'])
      .execute();
    const out = new Map<string, QueueFunctionStats>();
    for (const r of rows) {
      const s = out.get(r.function) ?? { function: r.function, depth: 0, inflight: 0, oldestAgeS: 0 };
      if (r.status === 'Queued') s.depth += Number(r.n);
      else s.inflight += Number(r.n);
      s.oldestAgeS = Math.max(s.oldestAgeS, Math.max(0, (now - Number(r.oldest)) / 1000));
      out.set(r.function, s);
    }
    return [...out.values()].sort((a, b) => a.function.localeCompare(b.function));
  }
}
