// Feeds queued async events to the worker layer, beside synchronous calls.
//
// Fairness rule (docs/architecture.md): async events of one function hold at
// most ceil(share x concurrency) of its instances at once (LAMINA_ASYNC_SHARE,
// default half), and a node runs at most LAMINA_ASYNC_MAX_INFLIGHT events at
// once; the rest of the function's capacity stays free for synchronous calls.
// A call the worker refuses for load (429/503) goes back to the queue without
// costing an attempt: under overload the queue grows and nothing is refused.
import { LaminaError, isLaminaError, ERROR_STATUS, type ErrorType } from '../errors.js';
import type { Manifest } from '../registry/types.js';
import type { InvokeOptions } from '../worker/invoke-options.js';
import type { CallResult } from '../worker/function-runner.js';
import { backoffMs } from './backoff.js';
import type { AsyncConfig } from './config.js';
import { destinationRecord, type DestinationCondition, type FailureInfo } from './destination.js';
import type { AsyncQueue, ClaimedEvent, FinalStatus, FollowUp } from './queue.js';

/** Manifest defaults of `async` (AWS Lambda's). */
export const ASYNC_DEFAULTS = { retries: 2, maxEventAgeS: 21600 } as const;

const FINAL_ERRORS = new Set<string>(['HandlerError', 'Timeout', 'SandboxCrashed', 'MemoryLimitExceeded']);
/** Refusals for load or shutdown: the event waits and tries again, its attempt given back. */
const BUSY_ERRORS = new Set<string>(['TooManyRequests', 'ServiceUnavailable']);
const BUSY_RETRY_MS = 250;
/** Events claimed per statement. */
const CLAIM_BATCH = 4;

export interface DispatcherDeps {
  queue: AsyncQueue;
  /** Runs one call on the worker layer (a node's Worker, with the code fetched first in a cluster). */
  invoke(name: string, requestId: string, event: unknown, opts: InvokeOptions): Promise<CallResult>;
  /** The current manifest of a function, or undefined when it does not exist. */
  manifest(name: string): Manifest | undefined;
  /** Functions warm on this node: claimed first (the sticky preference). */
  warm?(): string[];
  /** Unique per process: the lease owner. */
  owner: string;
  config: AsyncConfig;
  observe?: {
    result?(r: CallResult): void;
    retry?(fn: string): void;
    expired?(fn: string): void;
    finished?(fn: string, status: FinalStatus): void;
  };
  log: (msg: string) => void;
}

export class Dispatcher {
  /** Events held here (running or waiting for their function's share), by function. */
  private held = new Map<string, ClaimedEvent[]>();
  private running = new Map<string, number>();
  private heldCount = 0;
  private pumping = false;
  private again = false;
  private stopped = false;
  private timers: NodeJS.Timeout[] = [];
  private idle: (() => void) | undefined;
  /**
   * The skip list of the last claim that found nothing, and when. A claim that skips a function
   * with a long backlog scans that backlog; it is not repeated (on every completion) until an
   * event of another function arrives or a poll interval passes.
   */
  private nothingBut: { key: string; at: number } | undefined;
  /** A new event of a function already at its share changes nothing here: no claim (which would scan the backlog). */
  private readonly onEnqueued = (name: string) => {
    if (name !== '*' && this.isFull(name)) return;
    this.nothingBut = undefined;
    this.wake();
  };

  constructor(private readonly deps: DispatcherDeps) {}

  start(): void {
    const { config, queue } = this.deps;
    queue.on('enqueued', this.onEnqueued);
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const t = setInterval(() => void fn().catch((err) => this.deps.log(`async dispatcher: ${(err as Error).message}`)), ms);
      t.unref();
      this.timers.push(t);
    };
    every(config.pollMs, async () => this.wake());
    every(Math.max(100, config.leaseMs / 3), () => this.renew());
    every(Math.max(100, config.leaseMs / 3), () => queue.takeOver());
    this.wake();
  }

  /** Stops claiming; waits for the events being run; gives the waiting ones back to the queue. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.deps.queue.off('enqueued', this.onEnqueued);
    for (const t of this.timers) clearInterval(t);
    for (const [fn, list] of this.held) {
      const waiting = list.slice(this.running.get(fn) ?? 0);
      for (const ev of waiting) {
        this.release(ev);
        await this.deps.queue.requeue(ev, this.deps.owner, Date.now()).catch(() => undefined);
      }
    }
    if (this.heldCount > 0) await new Promise<void>((resolve) => (this.idle = resolve));
  }

  get inflight(): number {
    return this.heldCount;
  }

  /** The most async events of this function that may run at once. */
  capOf(m: Manifest): number {
    return Math.max(1, Math.ceil(m.concurrency * m.instanceConcurrency * this.deps.config.share));
  }

  private isFull(fn: string): boolean {
    const list = this.held.get(fn);
    if (!list) return false;
    const m = this.deps.manifest(fn);
    return !!m && list.length >= this.capOf(m);
  }

  wake(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void this.pump()
      .catch((err) => this.deps.log(`async dispatcher: ${(err as Error).message}`))
      .finally(() => {
        this.pumping = false;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  private async pump(): Promise<void> {
    for (;;) {
      this.again = false;
      const free = this.deps.config.maxInflight - this.heldCount;
      if (free <= 0 || this.stopped) return;
      const skip: string[] = [];
      for (const [fn, list] of this.held) {
        const m = this.deps.manifest(fn);
        if (m && list.length >= this.capOf(m)) skip.push(fn);
      }
      // Small batches, re-deciding which functions are full between them: a node never hoards
      // more than a few events beyond a function's share (other workers of a cluster take them).
      const key = skip.sort().join('\n');
      if (skip.length && this.nothingBut?.key === key && Date.now() - this.nothingBut.at < this.deps.config.pollMs) return;
      const batch = Math.min(free, CLAIM_BATCH);
      const claimed = await this.deps.queue.claim(this.deps.owner, batch, this.deps.config.leaseMs, skip, this.deps.warm?.() ?? []);
      for (const ev of claimed) this.hold(ev);
      for (const fn of new Set(claimed.map((e) => e.function))) this.startWaiting(fn);
      if (claimed.length === 0 && skip.length) this.nothingBut = { key, at: Date.now() };
      if (claimed.length < batch) return; // drained what is due
    }
  }

  private hold(ev: ClaimedEvent): void {
    const list = this.held.get(ev.function) ?? [];
    list.push(ev);
    this.held.set(ev.function, list);
    this.heldCount++;
  }

  private release(ev: ClaimedEvent): void {
    const list = this.held.get(ev.function);
    const i = list?.indexOf(ev) ?? -1;
    if (list && i >= 0) {
      list.splice(i, 1);
      this.heldCount--;
      if (list.length === 0) this.held.delete(ev.function);
    }
    if (this.heldCount === 0 && this.idle) {
      this.idle();
      this.idle = undefined;
    }
  }

  /** Starts held events of a function up to its share. Held events are kept in order: running ones first. */
  private startWaiting(fn: string): void {
    const list = this.held.get(fn);
    if (!list || this.stopped) return;
    const m = this.deps.manifest(fn);
    const cap = m ? this.capOf(m) : Infinity;
    let running = this.running.get(fn) ?? 0;
    while (running < list.length && running < cap) {
      const ev = list[running]!;
      running++;
      this.running.set(fn, running);
      void this.run(ev).finally(() => {
        this.running.set(fn, (this.running.get(fn) ?? 1) - 1);
        if ((this.running.get(fn) ?? 0) <= 0) this.running.delete(fn);
        this.release(ev);
        this.startWaiting(fn);
        this.wake();
      });
    }
  }

  private async renew(): Promise<void> {
    const ids = [...this.held.values()].flat().map((e) => e.requestId);
    if (ids.length) await this.deps.queue.renew(this.deps.owner, ids, this.deps.config.leaseMs);
  }

  private async run(ev: ClaimedEvent): Promise<void> {
    try {
      await this.attempt(ev);
    } catch (err) {
      // The database failed us: the lease runs out and the event is taken over, so nothing is lost.
      this.deps.log(`async event ${ev.requestId} of ${ev.function}: ${(err as Error).message}`);
    }
  }

  private async attempt(ev: ClaimedEvent): Promise<void> {
    const { queue, owner } = this.deps;
    const m = this.deps.manifest(ev.function);
    if (!m) {
      await this.end(ev, { status: 'FunctionNotFound', error: { type: 'FunctionNotFound', message: `function "${ev.function}" does not exist` } });
      return;
    }
    const settings = { ...ASYNC_DEFAULTS, ...m.async };
    if (Date.now() - ev.enqueuedAt > settings.maxEventAgeS * 1000) {
      this.deps.observe?.expired?.(ev.function);
      const error = ev.lastError ?? { type: 'Expired', message: `the event was older than maxEventAgeS (${settings.maxEventAgeS} s) before it could run` };
      await this.end(ev, { status: 'Expired', attempts: ev.attempts - 1, error }, m, 'EventAgeExceeded', errorStatus(ev.lastError));
      return;
    }
    let result: CallResult;
    try {
      result = await this.deps.invoke(ev.function, ev.requestId, ev.event, { trigger: ev.trigger, attempt: ev.attempts, ...(ev.version !== undefined ? { version: ev.version } : {}) });
    } catch (err) {
      const le = isLaminaError(err) ? err : new LaminaError('InternalError', (err as Error).message);
      if (BUSY_ERRORS.has(le.type)) {
        await queue.requeue(ev, owner, Date.now() + BUSY_RETRY_MS);
        return;
      }
      if (le.type === 'FunctionNotFound') {
        await this.end(ev, { status: 'FunctionNotFound', error: { type: le.type, message: le.message } });
        return;
      }
      // The call may or may not have run (a worker lost mid-call): a failed attempt.
      await this.failed(ev, m, settings, { type: FINAL_ERRORS.has(le.type) ? le.type : 'SandboxCrashed', message: le.message });
      return;
    }
    this.deps.observe?.result?.(result);
    const { outcome } = result;
    if (outcome.ok) {
      await this.end(ev, { status: 'Success', result: outcome.value }, m, 'Success', 200, outcome.value);
      return;
    }
    const e = outcome.error!;
    await this.failed(ev, m, settings, { type: e.type, message: e.message, ...(e.stack ? { stack: e.stack } : {}) });
  }

  private async failed(ev: ClaimedEvent, m: Manifest, settings: { retries: number }, error: FailureInfo): Promise<void> {
    if (ev.attempts <= settings.retries) {
      this.deps.observe?.retry?.(ev.function);
      await this.deps.queue.requeue(ev, this.deps.owner, Date.now() + backoffMs(ev.attempts, this.deps.config.retryBaseMs), error);
      return;
    }
    const status = (FINAL_ERRORS.has(error.type) ? error.type : 'SandboxCrashed') as FinalStatus;
    await this.end(ev, { status, error }, m, 'RetriesExhausted', errorStatus(error));
  }

  private async end(
    ev: ClaimedEvent,
    f: { status: FinalStatus; attempts?: number; result?: unknown; error?: FailureInfo | null },
    m?: Manifest,
    condition?: DestinationCondition,
    statusCode: number | null = null,
    value?: unknown,
  ): Promise<void> {
    let followUp: FollowUp | undefined;
    const target = condition === 'Success' ? m?.async?.onSuccess : condition ? m?.async?.onFailure : undefined;
    if (target && condition && !ev.noDestinations) {
      followUp = {
        function: target,
        event: destinationRecord({
          requestId: ev.requestId,
          functionName: ev.function,
          condition,
          attempts: f.attempts ?? ev.attempts,
          event: ev.event,
          statusCode,
          result: value,
          error: f.error ?? null,
        }),
      };
    }
    if (await this.deps.queue.finish(ev, this.deps.owner, { ...f, followUp })) this.deps.observe?.finished?.(ev.function, f.status);
  }
}

function errorStatus(e: FailureInfo | null | undefined): number | null {
  if (!e) return null;
  return (ERROR_STATUS as Record<string, number>)[e.type as ErrorType] ?? 500;
}
