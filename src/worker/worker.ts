// The node-level worker: one FunctionRunner per function, a shared memory
// budget with least-recently-used eviction of idle instances, keep-alive
// expiry, and the link from instances to metering.
import os from 'node:os';
import type { ServerConfig } from '../config.js';
import { LaminaError } from '../errors.js';
import type { MeterSink } from '../metering/types.js';
import type { FunctionVersion, RegistryEvents } from '../registry/types.js';
import type { LoadSpec, Sandbox } from '../sandbox/types.js';
import { FunctionRunner, loadSpecOf, type CallResult } from './function-runner.js';
import type { Instance } from './instance.js';
import type { InvokeOptions } from './invoke-options.js';
import { MemoryBudget } from './memory-budget.js';
import { ScaleGate } from './scale-gate.js';

export type { CallResult } from './function-runner.js';

/** Where the worker learns which version of a function is current. */
export interface FunctionCatalog {
  current(name: string): FunctionVersion | undefined;
  /** A stored version by number, for calls pinned to a version that is not current (name:3, aliases). */
  getVersion?(name: string, version: number): Promise<FunctionVersion | undefined>;
  on(event: 'deployed', listener: RegistryEvents['deployed']): unknown;
  on(event: 'removed', listener: RegistryEvents['removed']): unknown;
}

/** Where the worker gets sandboxes. */
export interface SandboxSource {
  /** With the version's LoadSpec, a sandbox that preloaded its dependencies may be handed out. */
  acquire(m: FunctionVersion['manifest'], spec?: LoadSpec): Promise<Sandbox>;
  /** A version with installed dependencies became current: sandboxes may preload them (src/packages). */
  preload?(m: FunctionVersion['manifest'], spec: LoadSpec): void;
  /** A function was deleted: drop what was preloaded for it. */
  forget?(name: string): void;
  /** Whether a newly deployed version gets an instance started at once, before any call (the isolate tier's preload). */
  loadsAhead?(m: FunctionVersion['manifest']): boolean;
}

/** Longest a deploy waits for its version's instance started ahead; a slower start goes on in the background. */
export const AHEAD_WAIT_MS = 2000;

export interface WorkerOptions {
  id: string;
  /** Idle instances are stopped after this long without a call. */
  keepAliveMs: number;
  /** Calls that may wait per function before 429. */
  maxQueue: number;
  billingGranularityMs: number;
  /** Total memory instances may reserve (MB). */
  memoryBudgetMb: number;
  /** How long a call waits for memory before 429. */
  memoryWaitMs: number;
  /** Idle time before a pausable instance is frozen; negative disables. */
  pauseAfterMs: number;
  /** Pace scale-out and stop it at the cores' limit (src/worker/scale-gate.ts); default on. */
  scaleByCpu?: boolean;
}

/** The worker's settings out of a server's configuration (one node or a cluster worker). */
export function workerOptions(c: Pick<ServerConfig, 'keepAliveMs' | 'maxQueue' | 'billingGranularityMs' | 'memoryBudgetMb' | 'memoryWaitMs' | 'pauseAfterMs' | 'scaleByCpu'>, id: string): WorkerOptions {
  return {
    id,
    keepAliveMs: c.keepAliveMs,
    maxQueue: c.maxQueue,
    billingGranularityMs: c.billingGranularityMs,
    memoryBudgetMb: c.memoryBudgetMb,
    memoryWaitMs: c.memoryWaitMs,
    pauseAfterMs: c.pauseAfterMs,
    scaleByCpu: c.scaleByCpu,
  };
}

export interface WorkerStats {
  id: string;
  memory: { budgetMb: number; reservedMb: number; waiting: number };
  functions: { name: string; version: number; starting: number; busy: number; idle: number; paused: number; queue: number }[];
}

export interface InstanceView {
  id: string;
  version: number;
  state: string;
  tier: string | null;
  inflight: number;
  calls: number;
  paused: boolean;
  idleMs: number;
  memoryMb: number | null;
  cpuMs: number | null;
}

export class Worker {
  private runners = new Map<string, FunctionRunner>();
  /** Runners of versions that are not current, keyed "name@version"; never updated, dropped once empty. */
  private pinned = new Map<string, FunctionRunner>();
  private budget: MemoryBudget;
  private reaper: NodeJS.Timeout;
  private stopping = false;
  /** Instances being started ahead of any call, by "name@version". */
  private ahead = new Map<string, Promise<void>>();
  private readonly gate: ScaleGate | undefined;

  constructor(
    private readonly catalog: FunctionCatalog,
    private readonly sandboxes: SandboxSource,
    private readonly meter: MeterSink,
    readonly opts: WorkerOptions,
  ) {
    this.budget = new MemoryBudget(opts.memoryBudgetMb);
    this.gate = opts.scaleByCpu === false ? undefined : new ScaleGate({ cores: os.availableParallelism() });
    catalog.on('deployed', (fv) => {
      this.runners.get(fv.name)?.update(fv);
      if (fv.packagesHash) sandboxes.preload?.(fv.manifest, loadSpecOf(fv));
      if (sandboxes.loadsAhead?.(fv.manifest)) this.startAhead(fv);
    });
    catalog.on('removed', (name) => {
      this.runners.get(name)?.remove();
      for (const [key, r] of this.pinned) {
        if (r.name !== name) continue;
        r.remove();
        this.pinned.delete(key);
      }
      sandboxes.forget?.(name);
    });
    this.reaper = setInterval(() => this.reap(), Math.max(100, Math.min(1000, opts.keepAliveMs / 2)));
    this.reaper.unref();
  }

  get id(): string {
    return this.opts.id;
  }

  invoke(name: string, requestId: string, event: unknown, opts?: InvokeOptions): Promise<CallResult> {
    if (this.stopping) return Promise.reject(new LaminaError('ServiceUnavailable', 'the worker is shutting down'));
    const fv = this.catalog.current(name);
    if (!fv) return Promise.reject(new LaminaError('FunctionNotFound', `function "${name}" does not exist`));
    if (opts?.version !== undefined && opts.version !== fv.version) return this.invokePinned(name, opts.version, requestId, event, opts);
    return this.runnerFor(fv).invoke(requestId, event, opts);
  }

  /**
   * Resolves once the instance started ahead for this version (at its deploy) is
   * ready or gave up, or after AHEAD_WAIT_MS; at once when there is none. A deploy
   * waits for it, so a call right after the deploy finds the function warm.
   */
  async whenStartedAhead(name: string, version: number): Promise<void> {
    const p = this.ahead.get(`${name}@${version}`);
    if (!p) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, AHEAD_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /** The runner of the current version `fv` of a function. */
  private runnerFor(fv: FunctionVersion): FunctionRunner {
    let runner = this.runners.get(fv.name);
    if (!runner || runner.version.version > fv.version) {
      // A runner left over from a deleted function of the same name: start afresh.
      if (runner) runner.remove();
      runner = new FunctionRunner(fv, this.runnerDeps());
      this.runners.set(fv.name, runner);
    } else if (runner.version.version < fv.version) {
      runner.update(fv);
    }
    return runner;
  }

  /** A new version was deployed: one instance of it starts now, so its first call is warm (the tier decides: loadsAhead). */
  private startAhead(fv: FunctionVersion): void {
    if (this.stopping || this.catalog.current(fv.name)?.version !== fv.version) return;
    const key = `${fv.name}@${fv.version}`;
    // Failures are the first call's to report (it starts its own instance and gets the error).
    const p = this.runnerFor(fv).startAhead().catch(() => undefined);
    this.ahead.set(key, p);
    void p.finally(() => {
      if (this.ahead.get(key) === p) this.ahead.delete(key);
    });
  }

  /** A call to a stored version that is not the current one: its own runner, kept while it has instances. */
  private async invokePinned(name: string, version: number, requestId: string, event: unknown, opts: InvokeOptions): Promise<CallResult> {
    const key = `${name}@${version}`;
    let runner = this.pinned.get(key);
    if (!runner) {
      const fv = await this.catalog.getVersion?.(name, version);
      if (!fv) throw new LaminaError('FunctionNotFound', `function "${name}" has no version ${version}`);
      runner = this.pinned.get(key);
      if (!runner) {
        runner = new FunctionRunner(fv, this.runnerDeps());
        this.pinned.set(key, runner);
      }
    }
    // The call's extras go along: an HTTP function's raw request, the trigger and attempt it is recorded with.
    return runner.invoke(requestId, event, opts);
  }

  stats(): WorkerStats {
    return {
      id: this.id,
      memory: { budgetMb: this.budget.totalMb, reservedMb: this.budget.reservedMb, waiting: this.budget.waiting },
      functions: [...this.runners.values()].map((r) => ({ name: r.name, ...r.stats() })),
    };
  }

  /** Each live instance of a function, with what its sandbox reports (memory, CPU time). */
  async instances(name: string): Promise<InstanceView[]> {
    const runners = [this.runners.get(name), ...[...this.pinned.values()].filter((r) => r.name === name)];
    return Promise.all(
      runners.flatMap((r) => (r ? [...r.instances] : [])).map(async (i) => {
        const s = i.state === 'ready' && i.sandbox ? await i.sandbox.stats().catch(() => undefined) : undefined;
        return {
          id: i.id,
          version: i.version.version,
          state: i.state,
          tier: i.sandbox?.tier ?? null,
          inflight: i.inflight,
          calls: i.calls,
          paused: i.paused,
          idleMs: i.inflight === 0 ? Date.now() - i.lastUsed : 0,
          memoryMb: s ? Math.round((s.memoryBytes / 1048576) * 10) / 10 : null,
          cpuMs: s?.cpuMs ?? null,
        };
      }),
    );
  }

  async shutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.reaper);
    this.gate?.stop();
    await Promise.all([...this.runners.values(), ...this.pinned.values()].map((r) => r.shutdown()));
  }

  private runnerDeps() {
    return {
      workerId: this.opts.id,
      maxQueue: this.opts.maxQueue,
      billingGranularityMs: this.opts.billingGranularityMs,
      pauseAfterMs: this.opts.pauseAfterMs,
      acquire: (fv: FunctionVersion) => this.sandboxes.acquire(fv.manifest, loadSpecOf(fv)),
      reserveMemory: (mb: number) => this.reserveMemory(mb),
      reserveFreeMemory: (mb: number) => this.budget.waiting === 0 && this.budget.tryReserve(mb),
      releaseMemory: (mb: number) => this.budget.release(mb),
      offerIdle: (runner: FunctionRunner, inst: Instance) => {
        // Someone is waiting for memory: an instance with nothing to do gives way.
        if (this.budget.waiting === 0) return false;
        void runner.retire(inst);
        return true;
      },
      record: (r: Parameters<MeterSink['record']>[0]) => this.meter.record(r),
      ...(this.gate ? { scaleGate: this.gate } : {}),
    };
  }

  private async reserveMemory(mb: number): Promise<boolean> {
    while (!this.budget.tryReserve(mb)) {
      const victim = this.lruIdle();
      if (!victim) return this.budget.reserve(mb, this.opts.memoryWaitMs);
      await victim.runner.retire(victim.inst);
    }
    return true;
  }

  private lruIdle(): { runner: FunctionRunner; inst: Instance } | undefined {
    let best: { runner: FunctionRunner; inst: Instance } | undefined;
    for (const runner of [...this.runners.values(), ...this.pinned.values()]) {
      const inst = runner.oldestIdle();
      if (inst && (!best || inst.lastUsed < best.inst.lastUsed)) best = { runner, inst };
    }
    return best;
  }

  private reap(): void {
    const now = Date.now();
    for (const [name, runner] of this.runners) {
      runner.reap(now, this.opts.keepAliveMs);
      if (runner.empty && !this.catalog.current(name)) this.runners.delete(name);
    }
    for (const [key, runner] of this.pinned) {
      runner.reap(now, this.opts.keepAliveMs);
      if (runner.empty) this.pinned.delete(key);
    }
  }
}
