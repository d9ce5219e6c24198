// Cron schedules of the current function versions. Each tick is claimed by
// inserting a unique (function, schedule, tick) row in the same transaction
// that enqueues its event, so every node of a cluster may run a Scheduler and
// a tick still fires once. Timers are armed from "now": ticks missed while
// nothing ran are never replayed. A deploy re-arms the function's schedules at
// once; a delete drops them.
import type { Cron } from 'croner';
import type { Transaction } from 'kysely';
import type { Database, Db } from '../store/db.js';
import type { FunctionVersion, RegistryEvents, ScheduleSpec } from '../registry/types.js';
import { compileCron, nextFiring } from '../util/cron.js';
import type { AsyncQueue } from './queue.js';

/** What the scheduler reads the schedules from: the node's registry. */
export interface ScheduleCatalog {
  current(name: string): FunctionVersion | undefined;
  list(): { name: string }[];
  on(event: 'deployed', listener: RegistryEvents['deployed']): unknown;
  on(event: 'removed', listener: RegistryEvents['removed']): unknown;
  off?(event: 'deployed' | 'removed', listener: (...a: never[]) => void): unknown;
}

export interface ScheduleView {
  function: string;
  cron: string;
  timezone: string;
  event: unknown;
  /** ISO time of the next firing, or null if it never fires again. */
  next: string | null;
}

interface Armed {
  key: string;
  /** The function version the schedule was read from. */
  version: number;
  spec: ScheduleSpec;
  job: Cron;
  timer?: NodeJS.Timeout;
}

/** Longest single setTimeout; longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The identity of a schedule inside its function: a changed cron or zone is a new schedule. */
function scheduleKey(i: number, s: ScheduleSpec): string {
  return `${i}|${s.cron}|${s.timezone}`;
}

/** Every schedule of the current versions with its next firing (for GET /api/v1/queue and the CLI). */
export function scheduleViews(catalog: Pick<ScheduleCatalog, 'current' | 'list'>, now = new Date()): ScheduleView[] {
  const out: ScheduleView[] = [];
  for (const { name } of catalog.list()) {
    for (const s of catalog.current(name)?.manifest.schedules ?? []) {
      let next: Date | null = null;
      try {
        next = nextFiring(compileCron(s.cron, s.timezone), now);
      } catch {
        next = null;
      }
      out.push({ function: name, cron: s.cron, timezone: s.timezone, event: s.event, next: next ? next.toISOString() : null });
    }
  }
  return out.sort((a, b) => (a.next ?? '~').localeCompare(b.next ?? '~'));
}

export class Scheduler {
  private armed = new Map<string, Armed[]>();
  private stopped = false;
  private readonly onDeployed = (fv: FunctionVersion) => this.sync(fv.name);
  private readonly onRemoved = (name: string) => this.clear(name);

  constructor(
    private readonly db: Db,
    private readonly queue: AsyncQueue,
    private readonly catalog: ScheduleCatalog,
    private readonly hooks: { fired?(fn: string): void; log(msg: string): void },
  ) {}

  start(): void {
    this.catalog.on('deployed', this.onDeployed);
    this.catalog.on('removed', this.onRemoved);
    for (const { name } of this.catalog.list()) this.sync(name);
  }

  stop(): void {
    this.stopped = true;
    this.catalog.off?.('deployed', this.onDeployed as never);
    this.catalog.off?.('removed', this.onRemoved as never);
    for (const name of [...this.armed.keys()]) this.clear(name);
  }

  /** Re-reads a function's schedules: unchanged ones keep their timers, others are (re)armed or dropped. */
  sync(name: string): void {
    if (this.stopped) return;
    const fv = this.catalog.current(name);
    const specs = fv?.manifest.schedules ?? [];
    const before = new Map((this.armed.get(name) ?? []).map((a) => [a.key, a]));
    const now: Armed[] = [];
    specs.forEach((spec, i) => {
      const key = scheduleKey(i, spec);
      const kept = before.get(key);
      if (kept) {
        kept.spec = spec; // the event may have changed
        kept.version = fv!.version;
        before.delete(key);
        now.push(kept);
        return;
      }
      try {
        const a: Armed = { key, version: fv!.version, spec, job: compileCron(spec.cron, spec.timezone) };
        now.push(a);
        this.arm(name, a, new Date());
      } catch (err) {
        this.hooks.log(`schedule ${key} of ${name}: ${(err as Error).message}`);
      }
    });
    for (const a of before.values()) clearTimeout(a.timer);
    if (now.length) this.armed.set(name, now);
    else this.armed.delete(name);
  }

  private clear(name: string): void {
    for (const a of this.armed.get(name) ?? []) clearTimeout(a.timer);
    this.armed.delete(name);
  }

  private arm(name: string, a: Armed, after: Date): void {
    const next = nextFiring(a.job, after);
    if (!next || this.stopped) return;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, next.getTime() - Date.now()));
    a.timer = setTimeout(() => {
      if (Date.now() < next.getTime()) return this.arm(name, a, new Date(next.getTime() - 1)); // a long wait, re-armed
      // Still this function's schedule? (A deploy or delete clears the timer, but be sure.)
      if (!this.armed.get(name)?.includes(a)) return;
      void this.fire(name, a, next.getTime());
      this.arm(name, a, new Date(Math.max(Date.now(), next.getTime())));
    }, wait);
    a.timer.unref();
  }

  /** Whether the function's current version (in the database) still has this schedule. */
  private async stillScheduled(trx: Transaction<Database>, name: string, a: Armed): Promise<boolean> {
    const fn = await trx.selectFrom('functions').select('current_version').where('name', '=', name).executeTakeFirst();
    if (!fn || fn.current_version === null) return false;
    if (Number(fn.current_version) === a.version) return true;
    const v = await trx.selectFrom('versions').select('manifest').where('name', '=', name).where('version', '=', Number(fn.current_version)).executeTakeFirst();
    if (!v) return false;
    const schedules = ((JSON.parse(v.manifest) as { schedules?: ScheduleSpec[] }).schedules ?? []) as ScheduleSpec[];
    return schedules.some((sch, i) => scheduleKey(i, sch) === a.key);
  }

  /** Fires one tick unless another node already did. */
  private async fire(name: string, a: Armed, tick: number): Promise<void> {
    try {
      const fired = await this.db.kysely.transaction().execute(async (trx) => {
        // In a cluster this node may not have heard of a delete or redeploy yet: the database decides.
        if (!(await this.stillScheduled(trx, name, a))) return undefined;
        const res = await trx
          .insertInto('schedule_ticks')
          .values({ function: name, schedule: a.key, tick, request_id: '', fired_at: Date.now() })
          .onConflict((oc) => oc.columns(['function', 'schedule', 'tick']).doNothing())
          .executeTakeFirst();
        if (Number(res.numInsertedOrUpdatedRows ?? 0) === 0) return undefined;
        const requestId = await this.queue.enqueueIn(trx, { function: name, event: a.spec.event, trigger: 'schedule' });
        await trx.updateTable('schedule_ticks').set({ request_id: requestId }).where('function', '=', name).where('schedule', '=', a.key).where('tick', '=', tick).execute();
        return requestId;
      });
      if (fired) {
        this.hooks.fired?.(name);
        this.queue.emit('enqueued', name);
      }
    } catch (err) {
      this.hooks.log(`schedule ${a.key} of ${name} at ${new Date(tick).toISOString()}: ${(err as Error).message}`);
    }
  }
}
