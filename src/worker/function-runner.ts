// Schedules one function's calls on its instances: warm reuse first, scale-out
// up to `concurrency` while calls wait, a bounded queue, version roll-over
// (calls in flight finish on the old version) and instance replacement.
import { ERROR_STATUS, LaminaError, isLaminaError } from '../errors.js';
import { billedMs, gbSeconds } from '../metering/billing.js';
import { reportLine } from '../metering/report.js';
import type { InvocationRecord, InvocationStatus } from '../metering/types.js';
import type { FunctionVersion } from '../registry/types.js';
import type { InvokeOutcome, LoadSpec, Sandbox } from '../sandbox/types.js';
import { Instance } from './instance.js';

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
    ...(fv.packagesHash && fv.packagesDir ? { packages: { hash: fv.packagesHash, dir: fv.packagesDir } } : {}),
  };
}

export interface CallResult {
  outcome: InvokeOutcome;
  record: InvocationRecord;
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
  releaseMemory(mb: number): void;
  /** Called when an instance turns idle; the worker may take it for memory. Returns true if it did. */
  offerIdle(runner: FunctionRunner, inst: Instance): boolean;
  record(r: InvocationRecord): void;
}

interface QueuedCall {
  requestId: string;
  event: unknown;
  resolve: (r: CallResult) => void;
  reject: (e: unknown) => void;
}

export class FunctionRunner {
  readonly instances = new Set<Instance>();
  private queue: QueuedCall[] = [];
  private removed = false;

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

  invoke(requestId: string, event: unknown): Promise<CallResult> {
    if (this.removed) return Promise.reject(new LaminaError('FunctionNotFound', `function "${this.name}" does not exist`));
    const inst = this.pickInstance();
    if (inst) return this.run(inst, requestId, event);
    if (this.queue.length >= this.deps.maxQueue)
      return Promise.reject(new LaminaError('TooManyRequests', `function "${this.name}" has ${this.queue.length} calls waiting (the queue's limit); retry later`));
    return new Promise<CallResult>((resolve, reject) => {
      this.queue.push({ requestId, event, resolve, reject });
      this.scale();
    });
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
    let startingSlots = 0;
    for (const inst of this.instances) {
      if (inst.version !== this.version) continue;
      live++;
      if (inst.state === 'starting') startingSlots += m.instanceConcurrency;
    }
    while (this.queue.length > startingSlots && live < m.concurrency) {
      void this.startInstance();
      live++;
      startingSlots += m.instanceConcurrency;
    }
  }

  private async startInstance(): Promise<void> {
    const fv = this.version;
    const inst = new Instance(fv);
    this.instances.add(inst);
    const started = performance.now();
    const reserved = await this.deps.reserveMemory(fv.manifest.memoryMb);
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
    let sandbox: Sandbox | undefined;
    try {
      sandbox = await this.deps.acquire(fv);
      if (inst.isDead()) {
        await sandbox.destroy();
        return;
      }
      inst.sandbox = sandbox;
      await sandbox.load(loadSpecOf(fv));
    } catch (err) {
      await this.retire(inst);
      await sandbox?.destroy();
      const e = isLaminaError(err) ? err : new LaminaError('SandboxCrashed', `could not start an instance: ${(err as Error).message}`);
      // The waiting calls would fail the same way; the next call tries a fresh start.
      this.failQueue(e);
      return;
    }
    if (inst.isDead()) return;
    inst.initMs = performance.now() - started;
    inst.state = 'ready';
    sandbox.onDeath(() => {
      void this.retire(inst);
      this.scale();
    });
    this.drain(inst);
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
      this.run(inst, c.requestId, c.event).then(c.resolve, c.reject);
    }
    if (inst.inflight === 0) {
      if (this.deps.offerIdle(this, inst)) return;
      this.schedulePause(inst);
    }
  }

  private schedulePause(inst: Instance): void {
    const sb = inst.sandbox;
    if (!sb?.pause || this.deps.pauseAfterMs < 0 || inst.paused) return;
    clearTimeout(inst.pauseTimer);
    inst.pauseTimer = setTimeout(() => {
      inst.pauseTimer = undefined;
      if (!inst.idle || inst.paused) return;
      inst.paused = true;
      sb.pause!().catch(() => (inst.paused = false));
    }, this.deps.pauseAfterMs);
  }

  private async run(inst: Instance, requestId: string, event: unknown): Promise<CallResult> {
    const sandbox = inst.sandbox!;
    const fv = inst.version;
    inst.inflight++;
    inst.calls++;
    const cold = inst.calls === 1;
    clearTimeout(inst.pauseTimer);
    inst.pauseTimer = undefined;
    if (inst.paused) {
      inst.paused = false;
      await sandbox.resume!().catch(() => undefined);
    }
    const startedAt = Date.now();
    const outcome = await sandbox.invoke({ requestId, event, deadlineMs: startedAt + fv.manifest.timeoutMs, coldStart: cold });
    inst.inflight--;
    inst.lastUsed = Date.now();
    const record = this.recordFor(inst, requestId, startedAt, cold, outcome);
    this.deps.record(record);
    if (!sandbox.alive) {
      // A dead instance is replaced on demand: queued calls start a fresh one.
      await this.retire(inst);
      this.scale();
    } else {
      this.drain(inst);
    }
    return { outcome, record };
  }

  private recordFor(inst: Instance, requestId: string, startedAt: number, cold: boolean, outcome: InvokeOutcome): InvocationRecord {
    const m = inst.version.manifest;
    const billed = billedMs(outcome.durationMs, this.deps.billingGranularityMs);
    const status: InvocationStatus = outcome.ok ? 'Success' : outcome.error!.type;
    const record: InvocationRecord = {
      requestId,
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
    };
    record.logs += (record.logs && !record.logs.endsWith('\n') ? '\n' : '') + reportLine(record);
    return record;
  }
}
