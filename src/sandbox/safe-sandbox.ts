// The one wrapper between the worker and every sandbox backend (OpenLambda's
// safeSandbox): it serializes state changes (load, pause, resume, destroy), so
// a thaw can never race a freeze; it hands a call to a paused sandbox only
// after thawing it; it destroys a sandbox on its first error; it answers calls
// on a dead sandbox with a "dead" outcome instead of throwing; and it tells
// listeners once when the sandbox dies on its own.
import { LaminaError } from '../errors.js';
import type { SchedSample } from './sched-stat.js';
import type { InvokeOutcome, InvokeRequest, LoadSpec, Sandbox, SandboxStats } from './types.js';

export type SafeState = 'running' | 'paused' | 'dead';

export class SafeSandbox implements Sandbox {
  private state: SafeState = 'running';
  /** Tail of the serialized state changes; each waits for the one before. */
  private chain: Promise<void> = Promise.resolve();
  /** State changes queued or running. */
  private changing = 0;
  private inflight = 0;
  private listeners: ((reason: string) => void)[] = [];
  private destroyed = false;
  private deathReason: string | undefined;

  constructor(readonly inner: Sandbox) {
    inner.onDeath((reason) => this.died(reason));
  }

  get id(): string {
    return this.inner.id;
  }
  get tier(): Sandbox['tier'] {
    return this.inner.tier;
  }
  get shape(): Sandbox['shape'] {
    return this.inner.shape;
  }
  get alive(): boolean {
    return this.state !== 'dead' && this.inner.alive;
  }
  /** What the runtime said it loaded (a fetch handler or not), once loaded. */
  get kind(): Sandbox['kind'] {
    return this.inner.kind;
  }
  /** True while frozen (or about to be: a pause is under way). */
  get paused(): boolean {
    return this.state === 'paused';
  }
  get canPause(): boolean {
    return typeof this.inner.pause === 'function' && typeof this.inner.resume === 'function';
  }

  load(spec: LoadSpec): Promise<void> {
    return this.serial(async () => {
      if (!this.alive) throw new LaminaError('SandboxCrashed', `the sandbox is dead${this.deathReason ? ` (${this.deathReason})` : ''}`);
      try {
        await this.inner.load(spec);
      } catch (err) {
        await this.kill(`load failed: ${(err as Error).message}`, false);
        throw err;
      }
    });
  }

  /** Whether the tier can take a first call along with the load (loadWithCall). */
  get canLoadWithCall(): boolean {
    return typeof this.inner.loadWithCall === 'function';
  }

  /** `load` with the first call along (Sandbox.loadWithCall); serialized as a load, the call counted as in flight until it ends. */
  loadWithCall(spec: LoadSpec, req: InvokeRequest): Promise<{ outcome: Promise<InvokeOutcome> } | undefined> {
    const inner = this.inner;
    if (!inner.loadWithCall) return Promise.reject(new Error('this sandbox cannot take a call with its load'));
    this.inflight++;
    const loaded = this.serial(async () => {
      if (!this.alive) throw new LaminaError('SandboxCrashed', `the sandbox is dead${this.deathReason ? ` (${this.deathReason})` : ''}`);
      try {
        return await inner.loadWithCall!(spec, req);
      } catch (err) {
        await this.kill(`load failed: ${(err as Error).message}`, false);
        throw err;
      }
    });
    return loaded.then(
      (running) => {
        if (!running) this.inflight--;
        else void running.outcome.finally(() => this.inflight--);
        return running;
      },
      (err: unknown) => {
        this.inflight--;
        throw err;
      },
    );
  }

  async preload(spec: LoadSpec): Promise<void> {
    const inner = this.inner;
    if (!inner.preload) throw new Error('this sandbox cannot preload');
    return this.serial(async () => {
      if (!this.alive) throw new LaminaError('SandboxCrashed', 'the sandbox is dead');
      try {
        await inner.preload!(spec);
      } catch (err) {
        await this.kill(`preload failed: ${(err as Error).message}`, false);
        throw err;
      }
    });
  }

  async invoke(req: InvokeRequest): Promise<InvokeOutcome> {
    const startedAt = performance.now();
    // Counted before any await: a pause queued from now on sees the call and is dropped.
    this.inflight++;
    try {
      if (this.state === 'paused' || this.changing > 0) await this.serial(() => this.thaw());
      if (!this.alive) return this.dead(startedAt);
      try {
        return await this.inner.invoke(req);
      } catch (err) {
        // Backends never reject; one that does is broken, and its sandbox goes.
        await this.kill(`the sandbox failed a call: ${(err as Error).message}`, true);
        return this.dead(startedAt);
      }
    } finally {
      this.inflight--;
    }
  }

  /** Freezes the sandbox if it is idle and running; a no-op otherwise (busy, paused, dead, or a tier without pausing). */
  pause(): Promise<void> {
    if (!this.canPause) return Promise.resolve();
    return this.serial(async () => {
      if (this.state !== 'running' || this.inflight > 0 || !this.inner.alive) return;
      try {
        await this.inner.pause!();
        this.state = 'paused';
      } catch (err) {
        // Half frozen is not a state a call may find: the sandbox goes.
        await this.kill(`it could not be paused: ${(err as Error).message}`, true);
      }
    });
  }

  resume(): Promise<void> {
    if (!this.canPause) return Promise.resolve();
    return this.serial(() => this.thaw());
  }

  /** Thaws a paused sandbox (run inside `serial`); one that cannot be thawed dies. */
  private async thaw(): Promise<void> {
    if (this.state !== 'paused') return;
    try {
      await this.inner.resume!();
      this.state = 'running';
    } catch (err) {
      await this.kill(`it could not be thawed: ${(err as Error).message}`, true);
    }
  }

  async stats(): Promise<SandboxStats> {
    if (!this.alive) return { memoryBytes: 0, maxMemoryBytes: 0 };
    try {
      return await this.inner.stats();
    } catch {
      return { memoryBytes: 0, maxMemoryBytes: 0 };
    }
  }

  /** Undefined when the tier cannot tell, the sandbox is gone, or the read fails (a process that just exited). */
  sched(): SchedSample | undefined {
    if (!this.alive || !this.inner.sched) return undefined;
    try {
      const v = this.inner.sched();
      return v && Number.isFinite(v.cpuMs) && Number.isFinite(v.waitMs) ? v : undefined;
    } catch {
      return undefined;
    }
  }

  /** Not serialized behind a slow pause: killing works on a frozen sandbox too (the tiers thaw to kill). */
  async destroy(): Promise<void> {
    this.destroyed = true;
    this.state = 'dead';
    await this.inner.destroy().catch(() => undefined);
  }

  onDeath(listener: (reason: string) => void): void {
    this.listeners.push(listener);
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    this.changing++;
    const run = this.chain.then(op);
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run.finally(() => this.changing--);
  }

  /** Destroys the sandbox after an error; `emit`: tell listeners (it died on its own, as the worker sees it). */
  private async kill(reason: string, emit: boolean): Promise<void> {
    if (this.state === 'dead') return;
    this.state = 'dead';
    this.deathReason = reason;
    await this.inner.destroy().catch(() => undefined);
    if (emit && !this.destroyed) this.notify(`SandboxCrashed: ${reason}`);
  }

  private died(reason: string): void {
    const wasDead = this.state === 'dead';
    this.state = 'dead';
    this.deathReason ??= reason;
    if (!wasDead && !this.destroyed) this.notify(reason);
  }

  private notify(reason: string): void {
    const ls = this.listeners.splice(0);
    for (const l of ls) {
      try {
        l(reason);
      } catch {
        /* a listener's bug must not stop the others */
      }
    }
  }

  private dead(startedAt: number): InvokeOutcome {
    return {
      ok: false,
      error: { type: 'SandboxCrashed', message: `the sandbox is dead${this.deathReason ? ` (${this.deathReason})` : ''}` },
      durationMs: performance.now() - startedAt,
      logs: '',
      maxMemoryBytes: 0,
    };
  }
}

/** Wraps a backend's sandbox once (a wrapped one is returned as is). */
export function safe(sandbox: Sandbox): SafeSandbox {
  return sandbox instanceof SafeSandbox ? sandbox : new SafeSandbox(sandbox);
}
