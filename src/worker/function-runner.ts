// Schedules one function's calls on its instances: warm reuse first, scale-out
// up to `concurrency` while calls wait, a bounded queue, version roll-over
// (calls in flight finish on the old version) and instance replacement.
import { ERROR_STATUS, LaminaError, isLaminaError } from '../errors.js';
import { billedMs, gbSeconds } from '../metering/billing.js';
import type { InvocationRecord, InvocationStatus } from '../metering/types.js';
import { finishLogs } from '../metering/report.js';
import type { FunctionVersion } from '../registry/types.js';
import { safe, type SafeSandbox } from '../sandbox/safe-sandbox.js';
import type { SchedSample } from '../sandbox/sched-stat.js';
import type { InvokeOutcome, InvokeRequest, LoadSpec, Sandbox } from '../sandbox/types.js';
import { prepareCall, readAnswer, type PreparedCall } from '../http/prepare.js';
import type { HttpResponse } from '../http/response.js';
import { Instance } from './instance.js';
import type { InvokeOptions } from './invoke-options.js';
import type { GateSubject, ScaleGate } from './scale-gate.js';

/** What a sandbox needs to specialize for a version. */
export function loadSpecOf(fv: FunctionVersion): LoadSpec {
  return {
    functionName: fv.name,
    functionVersion: fv.version,
    codeDir: fv.codeDir,
    entry: fv.codeEntry,
    handler: fv.manifest.handler,
    env: fv.manifest.env,
    memoryMb: fv.manifest.memoryMb,
    timeoutMs: fv.manifest.timeoutMs,
    network: fv.manifest.network,
    ...(fv.manifest.processes !== undefined ? { maxProcesses: fv.manifest.processes } : {}),
    ...(fv.packagesHash && fv.packagesDir ? { packages: { hash: fv.packagesHash, dir: fv.packagesDir } } : {}),
  };
}

export interface CallResult {
  outcome: InvokeOutcome;
  record: InvocationRecord;
  /** HTTP functions (not json mode): the checked response to send. */
  response?: HttpResponse;
}

/** What a runner needs from its worker. */
export interface RunnerDeps {
  workerId: string;
  maxQueue: number;
  billingGranularityMs: number;
  /** Idle time before a pausable sandbox is frozen; negative disables pausing. */
  pauseAfterMs: number;
  /** A generic sandbox suited to this version, from the pool when one waits. */
  acquire(fv: FunctionVersion): Promise<Sandbox>;
  /** Reserves memory for a new instance, evicting or waiting as the worker sees fit. */
  reserveMemory(mb: number): Promise<boolean>;
  /** Reserves memory only if it is free now: no eviction, no wait (instances started ahead of any call). */
  reserveFreeMemory(mb: number): boolean;
  releaseMemory(mb: number): void;
  /** Called when an instance turns idle; the worker may take it for memory. Returns true if it did. */
  offerIdle(runner: FunctionRunner, inst: Instance): boolean;
  record(r: InvocationRecord): void;
  /** Paces scale-out and stops it at the cores' limit (absent: every waiting call may start an instance at once). */
  scaleGate?: Pick<ScaleGate, 'mayStart'>;
}

/** Starts tried for the calls waiting before they fail with the start's error. */
const MAX_START_ATTEMPTS = 3;

/** A call prepared for its instance and counted in (FunctionRunner.begin). */
interface BegunCall {
  requestId: string;
  opts: InvokeOptions | undefined;
  call: PreparedCall;
  cold: boolean;
  startedAt: number;
  req: InvokeRequest;
}

interface QueuedCall {
  requestId: string;
  event: unknown;
  opts: InvokeOptions | undefined;
  resolve: (r: CallResult) => void;
  reject: (e: unknown) => void;
}

export class FunctionRunner implements GateSubject {
  readonly instances = new Set<Instance>();
  private queue: QueuedCall[] = [];
  private removed = false;
  private stopping = false;
  /** Instance starts that failed in a row (not for the function's own fault). */
  private startFailures = 0;

  constructor(
    public version: FunctionVersion,
    private readonly deps: RunnerDeps,
  ) {}

  get name(): string {
    return this.version.name;
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  get waiting(): boolean {
    return this.queue.length > 0 && !this.removed && !this.stopping;
  }

  *schedReadings(): Iterable<[string, SchedSample | undefined]> {
    for (const inst of this.instances) if (inst.state === 'ready' && inst.version === this.version) yield [inst.id, inst.sandbox?.sched()];
  }

  rescale(): void {
    this.scale();
  }

  invoke(requestId: string, event: unknown, opts?: InvokeOptions): Promise<CallResult> {
    if (this.removed) return Promise.reject(new LaminaError('FunctionNotFound', `function "${this.name}" does not exist`));
    const inst = this.pickInstance();
    if (inst) return this.run(inst, requestId, event, opts);
    if (this.queue.length >= this.deps.maxQueue && this.queue.length >= this.deps.maxQueue + this.unstartedSlots())
      return Promise.reject(new LaminaError('TooManyRequests', `function "${this.name}" has ${this.queue.length} calls waiting (the queue's limit); retry later`));
    return new Promise<CallResult>((resolve, reject) => {
      this.queue.push({ requestId, event, opts, resolve, reject });
      this.scale();
    });
  }

  /**
   * Slots of the instances the function may still start (up to `concurrency`). Calls held
   * back by the scale-out gate wait for them in the queue, beyond maxQueue: a call that
   * would have had an instance of its own is never refused for waiting instead.
   */
  private unstartedSlots(): number {
    const m = this.version.manifest;
    let live = 0;
    for (const inst of this.instances) if (inst.version === this.version) live++;
    return Math.max(0, m.concurrency - live) * m.instanceConcurrency;
  }

  /** A new version became current: new calls go to it; old instances retire once idle. */
  update(fv: FunctionVersion): void {
    if (fv.version === this.version.version) return;
    this.version = fv;
    for (const inst of this.instances) if (inst.version !== fv && inst.inflight === 0 && inst.state === 'ready') this.retire(inst);
    this.scale();
  }

  /** The function was deleted: waiting calls get 404, instances stop (busy ones after their call). */
  remove(): void {
    this.removed = true;
    for (const c of this.queue.splice(0)) c.reject(new LaminaError('FunctionNotFound', `function "${this.name}" was deleted`));
    for (const inst of this.instances) if (inst.inflight === 0) this.retire(inst);
  }

  /**
   * Starts one instance of the current version before any call asks for it (the
   * isolate tier's preload at deploy), unless one is live already or memory is
   * not free without evicting anything. Resolves once it is ready or gave up.
   */
  startAhead(): Promise<void> {
    if (this.removed || this.stopping) return Promise.resolve();
    for (const inst of this.instances) if (inst.version === this.version) return Promise.resolve();
    return this.startInstance(true);
  }

  /** Retires instances idle for longer than keepAliveMs. */
  reap(now: number, keepAliveMs: number): void {
    for (const inst of this.instances) if (inst.idle && now - inst.lastUsed > keepAliveMs) this.retire(inst);
  }

  /** The least recently used idle instance, for memory eviction. */
  oldestIdle(): Instance | undefined {
    let oldest: Instance | undefined;
    for (const inst of this.instances) if (inst.idle && (!oldest || inst.lastUsed < oldest.lastUsed)) oldest = inst;
    return oldest;
  }

  get empty(): boolean {
    return this.instances.size === 0 && this.queue.length === 0;
  }

  stats(): { starting: number; busy: number; idle: number; paused: number; queue: number; version: number } {
    let starting = 0;
    let busy = 0;
    let idle = 0;
    let paused = 0;
    for (const i of this.instances) {
      if (i.state === 'starting') starting++;
      else if (i.inflight > 0) busy++;
      else if (i.paused) paused++;
      else idle++;
    }
    return { starting, busy, idle, paused, queue: this.queue.length, version: this.version.version };
  }

  async shutdown(): Promise<void> {
    this.stopping = true;
    for (const c of this.queue.splice(0)) c.reject(new LaminaError('ServiceUnavailable', 'the worker is shutting down'));
    await Promise.all([...this.instances].map((i) => this.retire(i)));
  }

  retire(inst: Instance): Promise<void> {
    if (inst.state === 'dead') return Promise.resolve();
    inst.state = 'dead';
    clearTimeout(inst.pauseTimer);
    this.instances.delete(inst);
    if (inst.reservedMb > 0) this.deps.releaseMemory(inst.reservedMb);
    inst.reservedMb = 0;
    return inst.sandbox?.destroy() ?? Promise.resolve();
  }

  private pickInstance(): Instance | undefined {
    // The most recently used instance with room: keeps the warm set small, so
    // instances beyond what the load needs go idle and expire.
    let best: Instance | undefined;
    for (const inst of this.instances) {
      if (inst.version === this.version && inst.hasRoom() && (!best || inst.lastUsed > best.lastUsed)) best = inst;
    }
    return best;
  }

  private scale(): void {
    if (this.removed || this.queue.length === 0) return;
    const m = this.version.manifest;
    let live = 0;
    let ready = 0;
    let starting = 0;
    let startingSlots = 0;
    for (const inst of this.instances) {
      if (inst.version !== this.version) continue;
      live++;
      if (inst.state === 'ready') ready++;
      else if (inst.state === 'starting') {
        starting++;
        // A starting instance may already carry a call (sent with its load): that slot is taken.
        startingSlots += m.instanceConcurrency - inst.inflight;
      }
    }
    const gate = this.deps.scaleGate;
    while (this.queue.length > startingSlots && live < m.concurrency) {
      // Held back: the gate calls rescale() once a sample lets it start more; a start that ends calls scale() too.
      if (gate && !gate.mayStart(this, { ready, starting })) break;
      void this.startInstance();
      live++;
      starting++;
      startingSlots += m.instanceConcurrency;
    }
  }

  private async startInstance(ahead = false): Promise<void> {
    const fv = this.version;
    const inst = new Instance(fv);
    inst.startedAhead = ahead;
    this.instances.add(inst);
    const started = performance.now();
    if (ahead && !this.deps.reserveFreeMemory(fv.manifest.memoryMb)) {
      // A start nobody waits for never takes memory from warm instances or from calls waiting for it.
      inst.state = 'dead';
      this.instances.delete(inst);
      return;
    }
    const reserved = ahead || (await this.deps.reserveMemory(fv.manifest.memoryMb));
    if (reserved) inst.reservedMb = fv.manifest.memoryMb;
    if (inst.state === 'dead') {
      // Retired (function deleted, worker stopping) while waiting for memory.
      if (reserved) this.deps.releaseMemory(fv.manifest.memoryMb);
      return;
    }
    if (!reserved) {
      inst.state = 'dead';
      this.instances.delete(inst);
      // Nothing else will serve the waiting calls: say why rather than leave them hanging.
      if (![...this.instances].some((i) => i.version === this.version)) {
        this.failQueue(new LaminaError('TooManyRequests', `no memory available for "${this.name}": the worker's memory budget is full of busy instances; retry later`));
      }
      return;
    }
    let sandbox: SafeSandbox | undefined;
    let first: QueuedCall | undefined;
    let begun: BegunCall | undefined;
    let firstOutcome: Promise<InvokeOutcome> | undefined;
    try {
      sandbox = safe(await this.deps.acquire(fv));
      if (inst.isDead()) {
        await sandbox.destroy();
        return;
      }
      inst.sandbox = sandbox;
      // The first waiting call goes along with the load where the tier can: one exchange fewer.
      first = sandbox.canLoadWithCall ? this.queue.shift() : undefined;
      if (first) {
        try {
          begun = this.begin(inst, first.requestId, first.event, first.opts, true);
        } catch (err) {
          first.reject(err);
          first = undefined;
        }
      }
      if (first && begun) {
        firstOutcome = (await sandbox.loadWithCall(loadSpecOf(fv), begun.req).catch((err: unknown) => {
          // Not run: the call waits again, and gets the load's error with the others (or a retried start).
          this.unbegin(inst);
          this.requeue(first!);
          first = undefined;
          throw err;
        }))?.outcome;
      } else {
        await sandbox.load(loadSpecOf(fv));
      }
    } catch (err) {
      await this.retire(inst);
      await sandbox?.destroy();
      const e = isLaminaError(err) ? err : new LaminaError('SandboxCrashed', `could not start an instance: ${(err as Error).message}`);
      // A sandbox that died while starting (killed, a slow start) may be a passing accident: the
      // waiting calls get a few more starts. A function whose own code fails to load would fail
      // the same way every time: its waiting calls fail now, and the next call tries afresh.
      if (e.type === 'SandboxCrashed' && ++this.startFailures < MAX_START_ATTEMPTS) {
        this.scale();
        return;
      }
      this.startFailures = 0;
      this.failQueue(e);
      return;
    }
    this.startFailures = 0;
    inst.initMs = performance.now() - started;
    if (first && begun) {
      if (firstOutcome) {
        // Recorded (with initMs) and released like any call; on a dead instance it fails as one.
        const c = first;
        this.complete(inst, begun, firstOutcome).then(c.resolve, c.reject);
      } else {
        // Not run (a fetch handler): prepared anew and sent on its own below.
        this.unbegin(inst);
        this.requeue(first);
      }
    }
    if (inst.isDead()) {
      this.scale();
      return;
    }
    inst.state = 'ready';
    inst.lastUsed = Date.now();
    sandbox.onDeath(() => {
      void this.retire(inst);
      this.scale();
    });
    this.drain(inst);
    // One start fewer in flight: calls still waiting may get another (paced by the gate).
    this.scale();
  }

  /** A call taken for a start that did not run it goes back to the head of the queue (or fails: function deleted). */
  private requeue(c: QueuedCall): void {
    if (this.removed) c.reject(new LaminaError('FunctionNotFound', `function "${this.name}" was deleted`));
    else if (this.stopping) c.reject(new LaminaError('ServiceUnavailable', 'the worker is shutting down'));
    else this.queue.unshift(c);
  }

  private failQueue(err: LaminaError): void {
    for (const c of this.queue.splice(0)) c.reject(err);
  }

  /** Gives an instance that has room as much queued work as it can take. */
  private drain(inst: Instance): void {
    if (inst.state !== 'ready') return;
    if (this.removed || inst.version !== this.version) {
      if (inst.inflight === 0) void this.retire(inst);
      return;
    }
    while (inst.hasRoom() && this.queue.length > 0) {
      const c = this.queue.shift()!;
      this.run(inst, c.requestId, c.event, c.opts, true).then(c.resolve, c.reject);
    }
    if (inst.inflight === 0) {
      if (this.deps.offerIdle(this, inst)) return;
      this.schedulePause(inst);
    }
  }

  private schedulePause(inst: Instance): void {
    const sb = inst.sandbox;
    if (!sb?.canPause || this.deps.pauseAfterMs < 0 || inst.paused) return;
    clearTimeout(inst.pauseTimer);
    inst.pauseTimer = setTimeout(() => {
      inst.pauseTimer = undefined;
      // The wrapper drops the pause if a call arrives first, and thaws before handing one over.
      if (inst.idle) void sb.pause();
    }, this.deps.pauseAfterMs);
  }

  /** `queued`: the call waited for an instance (to start, or to have room). */
  private run(inst: Instance, requestId: string, event: unknown, opts: InvokeOptions | undefined, queued = false): Promise<CallResult> {
    let begun: BegunCall;
    try {
      begun = this.begin(inst, requestId, event, opts, queued);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.complete(inst, begun, inst.sandbox!.invoke(begun.req));
  }

  /** Prepares a call for its instance and counts it in; throws (nothing counted) when the call is refused (400). */
  private begin(inst: Instance, requestId: string, event: unknown, opts: InvokeOptions | undefined, queued: boolean): BegunCall {
    const fv = inst.version;
    // The module's kind (fetch handler or not) is known once loaded; before (a call sent with the
    // load) it is taken for an event handler, and a fetch handler's call is prepared again: src/http/prepare.ts.
    const call = prepareCall(fv.manifest, inst.sandbox!.kind, requestId, event, opts?.http);
    inst.inflight++;
    inst.calls++;
    // A cold start is a call that waited for its instance to start. An instance started ahead
    // (at deploy) that was ready when the call came costs the caller nothing: warm. A call that
    // queued while it was still starting did wait for it: cold.
    const cold = inst.calls === 1 && (!inst.startedAhead || queued);
    clearTimeout(inst.pauseTimer);
    inst.pauseTimer = undefined;
    const startedAt = Date.now();
    const req: InvokeRequest = { requestId, event: call.event, deadlineMs: startedAt + fv.manifest.timeoutMs, coldStart: cold, ...(call.http ? { http: call.http } : {}) };
    return { requestId, opts, call, cold, startedAt, req };
  }

  /** Takes back a begun call that was not run (a load that failed, a fetch handler's first call): it is not counted. */
  private unbegin(inst: Instance): void {
    inst.inflight--;
    inst.calls--;
  }

  /** Waits for a begun call's outcome, records it and frees its slot. */
  private async complete(inst: Instance, begun: BegunCall, pending: Promise<InvokeOutcome>): Promise<CallResult> {
    const { requestId, opts, call, cold, startedAt } = begun;
    let outcome: InvokeOutcome;
    try {
      outcome = await pending;
    } catch (err) {
      // The sandbox did not answer: the slot is given back and the instance goes, with its memory.
      await this.release(inst, undefined, true);
      throw err;
    }
    const settled = outcome.settled;
    delete outcome.settled;
    let response: HttpResponse | undefined;
    let record: InvocationRecord;
    try {
      response = readAnswer(outcome, call.http);
      record = this.recordFor(inst, requestId, startedAt, cold, outcome, opts);
      if (response) record.statusCode = response.statusCode;
    } catch (err) {
      // Whatever happened, the slot is given back (after any waitUntil work).
      void (settled ?? Promise.resolve()).then(() => this.release(inst, undefined));
      throw err;
    }
    if (settled) {
      // Answered, but ctx.waitUntil work goes on: the caller gets the answer now; the
      // instance stays busy and the call is recorded and billed when the work ends.
      void settled.then((end) => {
        let r: InvocationRecord | undefined;
        try {
          const final: InvokeOutcome = end.ok ? { ...outcome, durationMs: end.durationMs, logs: end.logs, maxMemoryBytes: end.maxMemoryBytes } : end;
          r = this.recordFor(inst, requestId, startedAt, cold, final, opts);
          if (response && end.ok) r.statusCode = response.statusCode;
        } catch {
          r = record;
        }
        return this.release(inst, r);
      });
    } else {
      await this.release(inst, record);
    }
    return response ? { outcome, record, response } : { outcome, record };
  }

  /** A call left its instance: record it, then give the instance more work or replace it. Never throws. */
  private async release(inst: Instance, record: InvocationRecord | undefined, broken = false): Promise<void> {
    inst.inflight--;
    inst.lastUsed = Date.now();
    try {
      if (record) this.deps.record(record);
    } catch {
      /* metering must not keep a slot */
    }
    if (broken || !inst.sandbox?.alive) {
      // A dead instance is replaced on demand: queued calls start a fresh one.
      await this.retire(inst);
      this.scale();
    } else {
      this.drain(inst);
    }
  }

  private recordFor(inst: Instance, requestId: string, startedAt: number, cold: boolean, outcome: InvokeOutcome, opts?: InvokeOptions): InvocationRecord {
    const m = inst.version.manifest;
    const billed = billedMs(outcome.durationMs, this.deps.billingGranularityMs);
    const status: InvocationStatus = outcome.ok ? 'Success' : outcome.error!.type;
    const record: InvocationRecord = {
      // Each retry of an async event is billed as its own record.
      requestId: opts?.attempt && opts.attempt > 1 ? `${requestId}#${opts.attempt}` : requestId,
      function: inst.version.name,
      version: inst.version.version,
      worker: this.deps.workerId,
      instance: inst.id,
      startedAt: new Date(startedAt).toISOString(),
      durationMs: Math.round(outcome.durationMs * 1000) / 1000,
      billedMs: billed,
      memoryMb: m.memoryMb,
      maxMemoryMb: Math.round((outcome.maxMemoryBytes / 1048576) * 10) / 10,
      gbSeconds: gbSeconds(m.memoryMb, billed),
      cold,
      initMs: cold ? Math.round(inst.initMs * 1000) / 1000 : null,
      status,
      statusCode: outcome.ok ? 200 : ERROR_STATUS[outcome.error!.type],
      logs: outcome.logs,
      trigger: opts?.trigger ?? 'http',
    };
    // The stack never goes to anonymous callers (gateway); the record's logs always keep it.
    record.logs = finishLogs(record, outcome.ok ? undefined : outcome.error);
    return record;
  }
}
