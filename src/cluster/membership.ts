// A gateway's view of the workers. The shared truth is the `workers` table:
// a worker's registration, heartbeats and deregistration reach whichever
// gateway its --gateway URL lands on, which writes them there; every gateway
// reads the table every `pollMs` (and at once on a `lamina_workers` notice).
//
// Liveness is judged on each gateway's own clock: a worker is down when its
// heartbeat counter has not moved for `timeoutMs`. A gateway also stops
// routing to a worker at once when it cannot reach it (suspect), and probes it
// until it answers again. A worker's calls in flight are aborted (502) when it
// is declared down; a draining or leaving worker keeps its calls.
import os from 'node:os';
import { Pool, request } from 'undici';
import type { Db } from '../store/db.js';
import type { WorkersTable } from '../store/schema.js';
import type { WorkerStats } from '../worker/worker.js';
import { WORKERS_CHANNEL, notify } from './notify.js';
import { INTERNAL_PREFIX, type HeartbeatRequest, type MembershipAnswer, type RegisterRequest, type WorkerInfo, type WorkerReport } from './protocol.js';
import { Router, type RoutingPolicy } from './ring.js';

export type MemberState = 'up' | 'draining' | 'left';
/** What `lamina workers` shows: the stored state, or down/unreachable as this gateway sees it. */
export type Health = 'up' | 'draining' | 'left' | 'down' | 'unreachable';

export interface Member {
  readonly id: string;
  url: string;
  origin: string;
  boot: string;
  state: MemberState;
  seq: number;
  /** Epoch ms (this gateway's clock) when the heartbeat counter last moved. */
  lastBeat: number;
  registeredAt: string;
  info: Partial<WorkerInfo>;
  stats: WorkerReport | undefined;
  /** Why this gateway cannot reach it, while it cannot. */
  unreachable: string | undefined;
  /** Its heartbeats stopped. */
  down: boolean;
  pool: Pool;
  /** Calls this gateway has on it: the load for routing. */
  inflight: number;
  /** Aborts for those calls, used when the worker is declared down. */
  calls: Set<AbortController>;
  /** It finished calls since the last read barrier (its records may still be buffered). */
  dirty: boolean;
  probing: boolean;
}

export interface WorkerView {
  id: string;
  url: string;
  state: Health;
  reason?: string;
  registeredAt: string;
  lastHeartbeatMsAgo: number;
  inflight: { gateway: number; worker: number | null };
  served: number | null;
  instances: number;
  warm: string[];
  memory: WorkerStats['memory'] | null;
  tiers: string[];
  host: string | null;
  pid: number | null;
}

export interface MembershipOptions {
  gatewayId: string;
  secret: string;
  heartbeatMs: number;
  timeoutMs: number;
  pollMs: number;
  policy: RoutingPolicy;
  epsilon: number;
  vnodes: number;
  connectTimeoutMs: number;
  /** TLS trust for https workers (cluster/tls.ts). */
  tlsConnect?: { ca?: Buffer };
  log: { info(msg: string): void; warn(msg: string): void };
}

export class WorkerLostError extends Error {}

function parseJson<T>(text: string, fallback: T): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

export class Membership {
  readonly router: Router;
  private readonly members = new Map<string, Member>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private closed = false;
  private dbTrouble = false;

  constructor(
    private readonly db: Db,
    private readonly opts: MembershipOptions,
  ) {
    this.router = new Router(opts.policy, opts.epsilon, opts.vnodes);
  }

  get heartbeatMs(): number {
    return this.opts.heartbeatMs;
  }

  async start(): Promise<void> {
    await this.poll();
    this.timer = setInterval(
      () =>
        void this.poll().then(
          () => {
            if (this.dbTrouble) this.opts.log.info('membership: the database answers again');
            this.dbTrouble = false;
          },
          (err) => {
            if (!this.dbTrouble) this.opts.log.warn(`membership: cannot read workers: ${(err as Error).message}; going on with what this gateway sees itself`);
            this.dbTrouble = true;
            this.evaluate();
          },
        ),
      this.opts.pollMs,
    );
    this.timer.unref();
  }

  /** Reads the workers table and re-judges every worker. Concurrent calls share one read. */
  poll(): Promise<void> {
    this.polling ??= (async () => {
      try {
        const rows = await this.db.kysely.selectFrom('workers').selectAll().execute();
        const seen = new Set<string>();
        for (const row of rows) {
          seen.add(row.id);
          this.applyRow(row, false);
        }
        for (const [id, m] of this.members) {
          if (!seen.has(id)) {
            this.members.delete(id);
            void m.pool.close().catch(() => undefined);
          }
        }
        this.evaluate();
      } finally {
        this.polling = undefined;
      }
    })();
    return this.polling;
  }

  /** Merges a row into the view; `direct` when this gateway just wrote it for the worker itself (a live sign). */
  private applyRow(row: WorkersTable, direct: boolean): Member {
    const now = Date.now();
    const seq = Number(row.seq);
    const state = (['up', 'draining', 'left'].includes(row.state) ? row.state : 'up') as MemberState;
    let m = this.members.get(row.id);
    if (!m || m.boot !== row.boot || m.url !== row.url) {
      const origin = new URL(row.url).origin;
      const reuse = m && m.origin === origin ? m.pool : undefined;
      if (m && !reuse) void m.pool.close().catch(() => undefined);
      const fresh: Member = {
        id: row.id,
        url: row.url,
        origin,
        boot: row.boot,
        state,
        seq,
        // A row seen for the first time is as fresh as its stored heartbeat (another gateway's clock).
        lastBeat: direct || m ? now : Math.min(now, Number(row.heartbeat_at)),
        registeredAt: row.registered_at,
        info: parseJson<Partial<WorkerInfo>>(row.info, {}),
        stats: parseJson<WorkerReport | undefined>(row.stats, undefined),
        unreachable: undefined,
        down: false,
        pool: reuse ?? this.newPool(origin),
        // Calls on the previous incarnation keep their own (old) member object.
        inflight: 0,
        calls: new Set(),
        dirty: m?.dirty ?? false,
        probing: false,
      };
      if (m) this.opts.log.info(`worker ${row.id} ${m.boot !== row.boot ? 'restarted' : 'moved'} (${row.url})`);
      else this.opts.log.info(`worker ${row.id} known at ${row.url} (${state})`);
      this.members.set(row.id, fresh);
      return fresh;
    }
    if (seq !== m.seq || direct) {
      m.seq = seq;
      m.lastBeat = now;
      m.stats = parseJson<WorkerReport | undefined>(row.stats, m.stats);
    }
    if (state !== m.state) {
      this.opts.log.info(`worker ${row.id}: ${m.state} -> ${state}`);
      m.state = state;
    }
    return m;
  }

  private newPool(origin: string): Pool {
    return new Pool(origin, {
      connect: { timeout: this.opts.connectTimeoutMs, ...this.opts.tlsConnect },
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 120_000,
      bodyTimeout: 0,
    });
  }

  private routable(m: Member): boolean {
    return m.state === 'up' && !m.down && !m.unreachable;
  }

  /** Re-judges liveness; aborts calls on workers found down; rebuilds the ring when the routable set changed. */
  evaluate(): void {
    const now = Date.now();
    for (const m of this.members.values()) {
      const silent = now - m.lastBeat > this.opts.timeoutMs;
      if (silent && !m.down) {
        m.down = true;
        if (m.state !== 'left') this.opts.log.warn(`worker ${m.id} is down: no heartbeat for ${((now - m.lastBeat) / 1000).toFixed(1)} s`);
        const reason = new WorkerLostError(`worker "${m.id}" stopped sending heartbeats (none for ${((now - m.lastBeat) / 1000).toFixed(1)} s)`);
        // A worker that left said goodbye: it finishes its calls. One that went silent lost them.
        if (m.state !== 'left') for (const ac of m.calls) ac.abort(reason);
      } else if (!silent && m.down) {
        m.down = false;
        // Its heartbeats resumed: worth trying again (a call that still cannot reach it marks it again).
        m.unreachable = undefined;
        this.opts.log.info(`worker ${m.id} is back`);
      }
    }
    this.router.setNodes([...this.members.values()].filter((m) => this.routable(m)).map((m) => m.id));
  }

  /** Where a call of `name` goes (by the routing policy), skipping `exclude`. */
  choose(name: string, exclude: ReadonlySet<string>): Member | undefined {
    const id = this.router.choose(name, (w) => this.members.get(w)?.inflight ?? 0, exclude);
    return id === undefined ? undefined : this.members.get(id);
  }

  get(id: string): Member | undefined {
    return this.members.get(id);
  }

  all(): Member[] {
    return [...this.members.values()];
  }

  routableCount(): number {
    return this.router.nodes.length;
  }

  /** This gateway could not reach the worker: stop routing to it and probe it until it answers. */
  markUnreachable(m: Member, reason: string): void {
    if (this.members.get(m.id) !== m) return; // replaced meanwhile (restart)
    if (!m.unreachable) this.opts.log.warn(`worker ${m.id} unreachable (${reason}); routing around it`);
    m.unreachable = reason;
    this.evaluate();
    this.probe(m);
  }

  /** The worker refused a call because it is stopping. */
  markLeaving(m: Member): void {
    if (m.state === 'up') {
      m.state = 'left';
      this.evaluate();
    }
  }

  private probe(m: Member): void {
    if (m.probing || this.closed) return;
    m.probing = true;
    const tick = async () => {
      if (this.closed || this.members.get(m.id) !== m || !m.unreachable || m.state === 'left') {
        m.probing = false;
        return;
      }
      try {
        const res = await request(`${m.origin}${INTERNAL_PREFIX}/ping`, {
          dispatcher: m.pool,
          headers: { authorization: `Bearer ${this.opts.secret}` },
          headersTimeout: 1000,
          bodyTimeout: 1000,
        });
        const body = (await res.body.json().catch(() => ({}))) as { boot?: string };
        if (res.statusCode === 200 && body.boot === m.boot) {
          m.unreachable = undefined;
          m.probing = false;
          this.opts.log.info(`worker ${m.id} reachable again`);
          this.evaluate();
          return;
        }
      } catch {
        // still unreachable
      }
      setTimeout(() => void tick(), 500).unref();
    };
    setTimeout(() => void tick(), 250).unref();
  }

  // ---- writes, on behalf of workers (gateway internal routes) and operators (admin routes)

  async register(r: RegisterRequest): Promise<MembershipAnswer> {
    const now = Date.now();
    const row: WorkersTable = {
      id: r.id,
      url: r.url,
      boot: r.boot,
      state: 'up',
      seq: 0,
      heartbeat_at: now,
      registered_at: new Date(now).toISOString(),
      info: JSON.stringify(r.info ?? {}),
      stats: JSON.stringify(r.stats ?? {}),
    };
    await this.db.kysely
      .insertInto('workers')
      .values(row)
      .onConflict((oc) =>
        oc.column('id').doUpdateSet({ url: row.url, boot: row.boot, state: 'up', seq: 0, heartbeat_at: now, registered_at: row.registered_at, info: row.info, stats: row.stats }),
      )
      .execute();
    this.applyRow(row, true);
    this.evaluate();
    await notify(this.db, WORKERS_CHANNEL, r.id).catch(() => undefined);
    return { state: 'up', heartbeatMs: this.opts.heartbeatMs, timeoutMs: this.opts.timeoutMs, gateway: this.opts.gatewayId };
  }

  /** Undefined when the worker is unknown under that boot: it must register again. */
  async heartbeat(r: HeartbeatRequest): Promise<MembershipAnswer | undefined> {
    const now = Date.now();
    const stats = JSON.stringify(r.stats ?? {});
    let row: WorkersTable | undefined;
    try {
      row = await this.db.kysely
        .updateTable('workers')
        .set({ seq: r.seq, heartbeat_at: now, stats, url: r.url })
        .where('id', '=', r.id)
        .where('boot', '=', r.boot)
        .where('state', '!=', 'left')
        .returningAll()
        .executeTakeFirst();
    } catch (err) {
      // The database is out: a worker this gateway knows is still alive as far as this gateway can tell.
      const m = this.members.get(r.id);
      if (!m || m.boot !== r.boot || m.state === 'left') throw err;
      m.seq = r.seq;
      m.lastBeat = now;
      m.stats = parseJson<WorkerReport | undefined>(stats, m.stats);
      this.evaluate();
      return { state: m.state, heartbeatMs: this.opts.heartbeatMs, timeoutMs: this.opts.timeoutMs, gateway: this.opts.gatewayId };
    }
    if (!row) return undefined;
    this.applyRow(row, true);
    this.evaluate();
    return { state: row.state, heartbeatMs: this.opts.heartbeatMs, timeoutMs: this.opts.timeoutMs, gateway: this.opts.gatewayId };
  }

  async deregister(id: string, boot: string): Promise<boolean> {
    const row = await this.db.kysely.updateTable('workers').set({ state: 'left' }).where('id', '=', id).where('boot', '=', boot).returningAll().executeTakeFirst();
    if (!row) return false;
    this.applyRow(row, true);
    this.evaluate();
    await notify(this.db, WORKERS_CHANNEL, id).catch(() => undefined);
    return true;
  }

  /** An operator's drain (state draining: no new calls) or resume (up). */
  async setState(id: string, state: 'up' | 'draining'): Promise<Member | undefined> {
    const row = await this.db.kysely.updateTable('workers').set({ state }).where('id', '=', id).where('state', '!=', 'left').returningAll().executeTakeFirst();
    if (!row) return undefined;
    const m = this.applyRow(row, false);
    this.evaluate();
    await notify(this.db, WORKERS_CHANNEL, id).catch(() => undefined);
    return m;
  }

  // ---- views

  health(m: Member): { state: Health; reason?: string } {
    if (m.state === 'left') return { state: 'left' };
    if (m.down) return { state: 'down', reason: `no heartbeat for ${((Date.now() - m.lastBeat) / 1000).toFixed(1)} s` };
    if (m.unreachable) return { state: 'unreachable', reason: m.unreachable };
    return { state: m.state };
  }

  view(): WorkerView[] {
    const now = Date.now();
    return [...this.members.values()]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((m) => {
        const s = m.stats;
        const fns = s?.functions ?? [];
        const live = m.state !== 'left' && !m.down;
        return {
          id: m.id,
          url: m.url,
          ...this.health(m),
          registeredAt: m.registeredAt,
          lastHeartbeatMsAgo: now - m.lastBeat,
          inflight: { gateway: m.inflight, worker: live && s ? s.inflight : null },
          served: s ? s.served : null,
          instances: live ? fns.reduce((n, f) => n + f.starting + f.busy + f.idle + f.paused, 0) : 0,
          warm: live ? fns.filter((f) => f.busy + f.idle + f.paused > 0).map((f) => f.name).sort() : [],
          memory: live && s ? s.memory : null,
          tiers: m.info.tiers ?? [],
          host: m.info.host ?? null,
          pid: m.info.pid ?? null,
        };
      });
  }

  /** Instances and memory over the live workers, from their last heartbeats. */
  mergedStats(id: string): WorkerStats {
    const memory = { budgetMb: 0, reservedMb: 0, waiting: 0 };
    const fns = new Map<string, WorkerStats['functions'][number]>();
    for (const m of this.members.values()) {
      if (m.state === 'left' || m.down || !m.stats) continue;
      memory.budgetMb += m.stats.memory?.budgetMb ?? 0;
      memory.reservedMb += m.stats.memory?.reservedMb ?? 0;
      memory.waiting += m.stats.memory?.waiting ?? 0;
      for (const f of m.stats.functions ?? []) {
        const cur = fns.get(f.name);
        if (!cur) fns.set(f.name, { ...f });
        else {
          cur.version = Math.max(cur.version, f.version);
          cur.starting += f.starting;
          cur.busy += f.busy;
          cur.idle += f.idle;
          cur.paused += f.paused;
          cur.queue += f.queue;
        }
      }
    }
    return { id, memory, functions: [...fns.values()] };
  }

  /** Tiers some live worker can run (for deploy checks); undefined when no worker is known. */
  liveTiers(): Set<string> | undefined {
    const live = [...this.members.values()].filter((m) => m.state !== 'left' && !m.down);
    if (live.length === 0) return undefined;
    return new Set(live.flatMap((m) => m.info.tiers ?? []));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.polling?.catch(() => undefined);
    await Promise.all([...this.members.values()].map((m) => m.pool.close().catch(() => undefined)));
  }
}

/** Unique enough across hosts and restarts; shown by /healthz and `lamina workers`. */
export function defaultGatewayId(): string {
  return `gateway-${os.hostname()}-${process.pid}`;
}
