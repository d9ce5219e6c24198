// A sandbox backed by one runtime child process speaking the wire protocol on
// fd 3. Tiers that run a process (process, container) differ only in how the
// process is launched, where its code is placed, how its memory is read and how
// it is killed or frozen: they pass those in as `ChildHooks`.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { LaminaError } from '../errors.js';
import { Channel, type RuntimeFrame } from './channel.js';
import { ProtocolViolation } from './frames.js';
import { busySampler, idleSampler, peakSampler, type MemorySampler } from './memory-sampler.js';
import { VIOLATION } from './line-channel.js';
import type { SchedSample } from './sched-stat.js';
import type { InvokeError, InvokeErrorType, InvokeOutcome, InvokeRequest, LoadSpec, ModuleKind, Sandbox, SandboxShape, SandboxStats, SandboxTier } from './types.js';

export interface ChildLaunch {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  /** Extra descriptors handed to the child as fd 4, 5, ... (e.g. a seccomp program); the caller closes its copies. */
  extraFds?: number[];
}

export interface ChildHooks {
  /** Puts the version's code where the runtime will find it; returns the entry path as the runtime sees it (and, for python, its installed requirements' import path). */
  placeCode(spec: LoadSpec): Promise<string | PlacedCode>;
  /** Current and peak memory of the sandbox, in bytes, and its CPU time where the tier can tell. */
  memory(pid: number): Promise<{ current: number; peak: number; cpuMs?: number }>;
  /** Time on a CPU and waiting for one (ms), read synchronously; tiers that cannot tell cheaply leave it out. */
  sched?(pid: number): SchedSample;
  /** Enforce this RSS cap from userland (tiers without a kernel memory limit). */
  userlandMemoryLimitBytes?: (spec: LoadSpec) => number;
  /** True when the last death was the kernel's OOM killer or a heap-limit abort. */
  diedOfMemory?(stderrTail: string, signal: NodeJS.Signals | null): Promise<boolean> | boolean;
  /** Kill everything in the sandbox (default: SIGKILL the child). */
  kill?(child: ChildProcess): void;
  pause?(): Promise<void>;
  resume?(): Promise<void>;
  /** Frees what the tier set up for this sandbox (dirs, cgroups). Runs after the child is gone. */
  cleanup(): Promise<void>;
  /** Called once the child is running (e.g. to move it into a cgroup) and after load (to set limits). */
  started?(pid: number): Promise<void>;
  loaded?(spec: LoadSpec): Promise<void>;
}

export interface PlacedCode {
  entry: string;
  importPaths?: string[];
}

const placedOf = (p: string | PlacedCode): PlacedCode => (typeof p === 'string' ? { entry: p } : p);

interface PendingCall {
  req: InvokeRequest;
  startedAt: number;
  logs: string[];
  logBytes: number;
  timer: NodeJS.Timeout;
  resolve: (o: InvokeOutcome) => void;
}

/** The generated file listing a version's dependencies: a module for node (src/packages/bundle.ts), a module list for python (registry/compile.ts). */
const PRELOAD_FILE = { node: 'preload.mjs', python: '__lamina_preload__.json' } as const;

const versionKey = (spec: LoadSpec): string => `${spec.functionName}@${spec.functionVersion}`;

/** Per-call log cap kept by the worker (the runtime caps too; raw fd output is capped here). */
const MAX_LOG_BYTES = 64 * 1024;
const READY_TIMEOUT_MS = 15_000;
const MIN_LOAD_TIMEOUT_MS = 10_000;
/** How far below the worker's own measurement a runtime-reported duration may be. */
const MAX_CLOCK_SKEW_MS = 5;

export class ChildRuntimeSandbox implements Sandbox {
  private child!: ChildProcess;
  private channel!: Channel;
  private pending = new Map<string, PendingCall>();
  private deathListeners: ((reason: string) => void)[] = [];
  private instanceLogs: string[] = [];
  private instanceLogBytes = 0;
  private stderrTail = '';
  private dead = false;
  private destroying = false;
  /** Why the sandbox is being killed, when the worker killed it on purpose. */
  private killReason: { type: InvokeErrorType; message: string } | undefined;
  private ready!: Promise<void>;
  private loadWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private peakMemory = 0;
  /** This sandbox's probe while it is in the shared sampler (calls in flight). */
  private readonly probe = (): void => void this.sampleMemory();
  private sampling = false;
  private readonly idleProbe = (): void => {
    if (this.pending.size === 0) void this.sampleMemory();
  };
  private idleWatching = false;
  private rssLimit = 0;
  private exited: Promise<void> | undefined;
  private cleaned: Promise<void> | undefined;
  private deathHandled = false;
  /** Set when the sandbox's own watchdogs killed it (not the worker's destroy). */
  private selfKilled = false;
  private spec: LoadSpec | undefined;
  /** What the runtime said it loaded (fetch handler or event handler). */
  kind: ModuleKind | undefined;
  /** Code placed ahead of `load` by `preload`: which version, and its entry path. */
  private placed: { key: string; code: PlacedCode } | undefined;

  constructor(
    readonly id: string,
    readonly tier: SandboxTier,
    readonly shape: SandboxShape,
    private readonly hooks: ChildHooks,
  ) {
    if (hooks.pause && hooks.resume) {
      this.pause = hooks.pause;
      this.resume = hooks.resume;
    }
  }

  get alive(): boolean {
    // On its way out (killed for a timeout, memory, a protocol breach, or stopped) is not alive:
    // a call given to it now would only get the kill's reason, meant for another call.
    return !this.dead && !this.destroying;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawns the runtime and waits for its `ready` frame. */
  async start(launch: ChildLaunch): Promise<void> {
    this.child = spawn(launch.command, launch.args, { env: launch.env, cwd: launch.cwd, stdio: ['ignore', 'pipe', 'pipe', 'pipe', ...(launch.extraFds ?? [])] });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.once('error', () => resolve());
    });
    // A failure while handling a death must not become an unhandled rejection in the server.
    this.child.on('error', (err) => void this.die(`failed to start: ${err.message}`, null).catch(() => undefined));
    this.child.on('exit', (code, signal) => void this.die(signal ? `killed by ${signal}` : `exited with code ${code}`, signal).catch(() => undefined));
    this.child.stdout!.on('data', (b: Buffer) => this.rawOutput(b.toString('utf8')));
    this.child.stderr!.on('data', (b: Buffer) => {
      const s = b.toString('utf8');
      this.stderrTail = (this.stderrTail + s).slice(-4096);
      this.rawOutput(s);
    });
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new LaminaError('SandboxCrashed', 'the runtime did not start in time')), READY_TIMEOUT_MS);
      this.loadWaiter = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
    this.channel = new Channel(this.child.stdio[3] as Duplex, (f) => this.onFrame(f), (reason) => this.onChannelClosed(reason));
    try {
      await this.ready;
      if (this.hooks.started && this.child.pid) await this.hooks.started(this.child.pid);
    } catch (err) {
      await this.destroy();
      throw err;
    }
  }

  async load(spec: LoadSpec): Promise<void> {
    if (this.dead) throw new LaminaError('SandboxCrashed', 'the sandbox is not running');
    this.spec = spec;
    const code = this.placed?.key === versionKey(spec) ? this.placed.code : placedOf(await this.hooks.placeCode(spec));
    if (this.hooks.userlandMemoryLimitBytes) this.rssLimit = this.hooks.userlandMemoryLimitBytes(spec);
    const done = new Promise<void>((resolve, reject) => {
      const limit = Math.max(spec.timeoutMs, MIN_LOAD_TIMEOUT_MS);
      const timer = setTimeout(() => reject(new LaminaError('Timeout', `the function took longer than ${limit} ms to initialize`)), limit);
      this.loadWaiter = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
    this.send({
      t: 'load',
      entry: code.entry,
      ...(code.importPaths?.length ? { importPaths: code.importPaths } : {}),
      handler: spec.handler,
      env: spec.env,
      function: { name: spec.functionName, version: spec.functionVersion, memoryMb: spec.memoryMb, timeoutMs: spec.timeoutMs },
    });
    try {
      await done;
      if (this.hooks.loaded) await this.hooks.loaded(spec);
    } catch (err) {
      await this.destroy();
      throw err;
    }
    await this.sampleMemory();
    if (this.rssLimit > 0 && !this.dead) {
      // Code may allocate between calls (a timer): the cap holds while idle as well.
      this.idleWatching = true;
      idleSampler.add(this.idleProbe);
    }
  }

  async preload(spec: LoadSpec): Promise<void> {
    if (this.dead) throw new LaminaError('SandboxCrashed', 'the sandbox is not running');
    if (this.spec || this.placed) throw new Error('preload: the sandbox is already specialized');
    const code = placedOf(await this.hooks.placeCode(spec));
    this.placed = { key: versionKey(spec), code };
    const done = new Promise<void>((resolve, reject) => {
      const limit = Math.max(spec.timeoutMs, MIN_LOAD_TIMEOUT_MS);
      const timer = setTimeout(() => reject(new LaminaError('Timeout', `preloading took longer than ${limit} ms`)), limit);
      this.loadWaiter = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
    this.send({
      t: 'preload',
      entry: path.posix.join(path.posix.dirname(code.entry), PRELOAD_FILE[this.shape.runtime]),
      ...(code.importPaths?.length ? { importPaths: code.importPaths } : {}),
      env: spec.env,
    });
    try {
      await done;
    } catch (err) {
      await this.destroy();
      throw err;
    }
  }

  invoke(req: InvokeRequest): Promise<InvokeOutcome> {
    if (this.dead) return Promise.resolve(this.failure('SandboxCrashed', 'sandbox is not running', performance.now(), []));
    if (this.destroying) return Promise.resolve(this.failure('SandboxCrashed', 'the sandbox is being stopped', performance.now(), []));
    return new Promise<InvokeOutcome>((resolve) => {
      const startedAt = performance.now();
      const call: PendingCall = {
        req,
        startedAt,
        logs: this.instanceLogs,
        logBytes: 0,
        resolve,
        timer: setTimeout(() => this.kill('Timeout', `the call exceeded its timeout (deadline ${new Date(req.deadlineMs).toISOString()})`), Math.max(0, req.deadlineMs - Date.now())),
      };
      // Output printed while loading belongs to the first call.
      this.instanceLogs = [];
      this.instanceLogBytes = 0;
      this.pending.set(req.requestId, call);
      try {
        this.send({
          t: 'invoke',
          id: req.requestId,
          event: req.event,
          context: {
            requestId: req.requestId,
            functionName: this.spec?.functionName ?? '',
            functionVersion: this.spec?.functionVersion ?? 0,
            memoryLimitMb: this.shape.memoryMb,
            deadlineMs: req.deadlineMs,
            coldStart: req.coldStart,
          },
          ...(req.http ? { http: req.http } : {}),
        });
      } catch (err) {
        // The event could not be serialized (e.g. nested too deep): the call fails, the sandbox is untouched.
        clearTimeout(call.timer);
        this.pending.delete(req.requestId);
        resolve(this.failure('SandboxCrashed', `the event could not be sent to the sandbox: ${(err as Error).message}`, startedAt, call.logs));
        return;
      }
      if (this.rssLimit > 0 || this.pending.size === 1) this.startSampler();
    });
  }

  /** Present only on tiers that can freeze a sandbox. */
  readonly pause?: () => Promise<void>;
  readonly resume?: () => Promise<void>;

  sched(): SchedSample | undefined {
    if (this.dead || !this.child.pid || !this.hooks.sched) return undefined;
    return this.hooks.sched(this.child.pid);
  }

  async stats(): Promise<SandboxStats> {
    if (this.dead || !this.child.pid) return { memoryBytes: 0, maxMemoryBytes: this.peakMemory };
    const m: { current: number; peak: number; cpuMs?: number } = await this.hooks.memory(this.child.pid).catch(() => ({ current: 0, peak: 0 }));
    this.peakMemory = Math.max(this.peakMemory, m.peak, m.current);
    return { memoryBytes: m.current, maxMemoryBytes: this.peakMemory, ...(m.cpuMs !== undefined ? { cpuMs: m.cpuMs } : {}) };
  }

  async destroy(): Promise<void> {
    // A second caller (or one after a death) also waits until everything is freed.
    if (this.destroying) {
      await this.exited;
      return this.cleanup();
    }
    this.destroying = true;
    if (!this.killReason) this.killReason = { type: 'SandboxCrashed', message: 'the sandbox was stopped' };
    this.stopWatchers();
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      try {
        (this.hooks.kill ?? ((c: ChildProcess) => c.kill('SIGKILL')))(this.child);
      } catch {
        /* already gone */
      }
      await this.exited;
    }
    this.dead = true;
    await this.cleanup();
  }

  /** The tier's cleanup, run once, after the child is gone. */
  private cleanup(): Promise<void> {
    return (this.cleaned ??= this.hooks.cleanup().catch(() => undefined));
  }

  onDeath(listener: (reason: string) => void): void {
    this.deathListeners.push(listener);
  }

  private onFrame(frame: RuntimeFrame): void {
    switch (frame.t) {
      case 'result':
      case 'settled': {
        const call = this.pending.get(frame.id);
        // Every call is answered once, while it is pending: any other id is forged.
        if (!call) throw new ProtocolViolation(`a ${frame.t} for a call that is not in flight (${JSON.stringify(frame.id.slice(0, 64))})`);
        // The runtime's clock around the handler is free of the worker's own scheduling
        // delays, so it is what is billed; bounded by the worker's clock, since code in
        // the sandbox could tamper with it, a lie can shave at most MAX_CLOCK_SKEW_MS.
        const measured = performance.now() - call.startedAt;
        const reported = typeof frame.ms === 'number' && Number.isFinite(frame.ms) ? frame.ms : measured;
        const durationMs = Math.min(measured, Math.max(reported, measured - MAX_CLOCK_SKEW_MS));
        const logs = call.logs.join('');
        let outcome: InvokeOutcome;
        if (frame.t === 'settled') outcome = { ok: true, durationMs, logs, maxMemoryBytes: this.peakMemory };
        else if (frame.ok) outcome = { ok: true, value: frame.value, durationMs, logs, maxMemoryBytes: this.peakMemory };
        else
          outcome = {
            ok: false,
            // InvalidResponse: the runtime could not convert the app's answer (a fetch handler returning a non-Response, ...).
            error: { type: frame.error?.type === 'InvalidResponse' ? 'InvalidResponse' : 'HandlerError', message: String(frame.error?.message ?? 'handler failed'), stack: frame.error?.stack },
            durationMs,
            logs,
            maxMemoryBytes: this.peakMemory,
          };
        const answer = call.resolve;
        if (frame.t === 'result' && frame.more === true) {
          // Answered, but waitUntil work goes on: the call stays pending (deadline, logs) until `settled`.
          outcome.settled = new Promise<InvokeOutcome>((resolve) => (call.resolve = resolve));
        } else {
          this.pending.delete(frame.id);
          clearTimeout(call.timer);
          if (this.pending.size === 0) this.stopSampler();
        }
        answer(outcome);
        return;
      }
      case 'log': {
        const call = frame.id ? this.pending.get(frame.id) : undefined;
        if (call) this.appendLog(call, frame.data);
        else this.appendInstanceLog(frame.data);
        return;
      }
      case 'loaded':
        if (frame.kind === 'fetch') this.kind = 'fetch';
        this.loadWaiter?.resolve();
        this.loadWaiter = undefined;
        return;
      case 'ready':
      case 'preloaded':
        this.loadWaiter?.resolve();
        this.loadWaiter = undefined;
        return;
      case 'load_error': {
        // The function's own code failed to load: the caller's fault, reported as a handler error.
        const e = frame.error;
        this.loadWaiter?.reject(new LaminaError('HandlerError', `the function failed to initialize: ${e.message}`, { stack: e.stack, phase: 'init' }));
        this.loadWaiter = undefined;
        return;
      }
      case 'preload_error':
        this.loadWaiter?.reject(new LaminaError('HandlerError', `a dependency failed to preload: ${frame.error.message}`));
        this.loadWaiter = undefined;
        return;
      case 'fatal':
        this.killReason ??= { type: 'SandboxCrashed', message: `the handler crashed the runtime: ${frame.error.message}` };
        this.stderrTail = (this.stderrTail + (frame.error.stack ?? frame.error.message)).slice(-4096);
        return;
    }
  }

  private rawOutput(s: string): void {
    // Output that bypassed the runtime's capture: attribute it to the only call in
    // flight when there is exactly one; otherwise keep it for the instance.
    if (this.pending.size === 1) this.appendLog(this.pending.values().next().value as PendingCall, s);
    else this.appendInstanceLog(s);
  }

  private appendLog(call: PendingCall, s: string): void {
    // Empty pieces are dropped, so a flood of empty frames costs no memory; the rest is capped per call.
    if (s.length === 0 || call.logBytes >= MAX_LOG_BYTES) return;
    const room = MAX_LOG_BYTES - call.logBytes;
    const piece = s.length > room ? s.slice(0, room) + '\n[lamina: log truncated]\n' : s;
    call.logBytes += piece.length;
    call.logs.push(piece);
  }

  private appendInstanceLog(s: string): void {
    if (s.length === 0 || this.instanceLogBytes >= MAX_LOG_BYTES) return;
    const piece = s.slice(0, MAX_LOG_BYTES - this.instanceLogBytes);
    this.instanceLogBytes += piece.length;
    this.instanceLogs.push(piece);
  }

  /** Sends a frame; a throw (an unserializable frame) is the caller's to handle. */
  private send(frame: Parameters<Channel['send']>[0]): void {
    this.channel.send(frame);
  }

  private kill(type: InvokeErrorType, message: string): void {
    if (this.dead || this.destroying) return;
    this.selfKilled = true;
    this.killReason = { type, message };
    void this.destroy();
  }

  private onChannelClosed(reason: string): void {
    if (this.dead || this.destroying) return;
    // The sandbox sent something the protocol does not allow: it dies now, alone.
    if (reason.startsWith(VIOLATION)) return this.kill('SandboxCrashed', `the sandbox broke the runtime protocol (${reason})`);
    // A closed channel means the runtime is exiting or broken. Give a dying process a
    // moment to report its exit status (a better message), then make sure it is gone.
    setTimeout(() => this.kill('SandboxCrashed', `the runtime closed its channel (${reason})`), 200).unref();
  }

  private async die(how: string, signal: NodeJS.Signals | null): Promise<void> {
    if (this.deathHandled) return;
    this.deathHandled = true;
    const wasDestroying = this.destroying;
    this.dead = true;
    this.stopWatchers();
    this.loadWaiter?.reject(new LaminaError('SandboxCrashed', `the runtime ${how}${this.stderrTail ? `: ${this.stderrTail.trim().split('\n').slice(-3).join(' | ')}` : ''}`));
    this.loadWaiter = undefined;
    let reason = this.killReason;
    if (!reason || reason.type === 'SandboxCrashed') {
      const oom = (await this.hooks.diedOfMemory?.(this.stderrTail, signal)) ?? false;
      if (oom) reason = { type: 'MemoryLimitExceeded', message: `the sandbox exceeded its memory limit of ${this.shape.memoryMb} MB` };
    }
    reason ??= { type: 'SandboxCrashed', message: `the sandbox ${how} during the call` };
    for (const call of this.pending.values()) {
      clearTimeout(call.timer);
      call.resolve(this.failure(reason.type, reason.message, call.startedAt, call.logs));
    }
    this.pending.clear();
    if (!wasDestroying) {
      this.destroying = true;
      await this.cleanup();
    }
    // Killed by the worker's own watchdogs (timeout, memory, protocol) is dying on its own too:
    // without this, a sandbox killed while idle would stay listed as an instance.
    if (!wasDestroying || this.selfKilled) for (const l of this.deathListeners) l(`${reason.type}: ${reason.message}`);
  }

  private failure(type: InvokeErrorType, message: string, startedAt: number, logs: string[]): InvokeOutcome {
    const error: InvokeError = { type, message };
    return { ok: false, error, durationMs: performance.now() - startedAt, logs: logs.join(''), maxMemoryBytes: this.peakMemory };
  }

  /** Without a userland cap the kernel enforces the limit, and sampling only refreshes the peak: slowly. */
  private get sampler(): MemorySampler {
    return this.rssLimit > 0 ? busySampler : peakSampler;
  }

  private startSampler(): void {
    if (this.sampling) return;
    this.sampling = true;
    this.sampler.add(this.probe);
  }

  private stopSampler(): void {
    if (!this.sampling) return;
    this.sampling = false;
    this.sampler.delete(this.probe);
  }

  private stopWatchers(): void {
    this.stopSampler();
    if (this.idleWatching) idleSampler.delete(this.idleProbe);
    this.idleWatching = false;
  }

  private async sampleMemory(): Promise<void> {
    if (this.dead || !this.child.pid) return;
    const s = await this.stats();
    if (this.rssLimit > 0 && s.memoryBytes > this.rssLimit)
      this.kill('MemoryLimitExceeded', `the sandbox exceeded its memory limit of ${this.shape.memoryMb} MB (resident ${Math.round(s.memoryBytes / 1048576)} MB)`);
  }
}
