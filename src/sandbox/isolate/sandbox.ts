// One isolate as a Sandbox. The sandbox is generic until `load`, which picks
// the function's isolate host and creates the isolate there (about a
// millisecond), so pre-started isolate sandboxes cost nothing.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LaminaError } from '../../errors.js';
import { ISOLATE_CODE_ENTRY } from '../../registry/compile.js';
import type { HostProcess, IsolateListener, Reply } from './host-process.js';
import type { FailureKind, FirstCall, InvokeFrame, IsoStats } from './protocol.js';
import type { InvokeErrorType, InvokeOutcome, InvokeRequest, LoadSpec, ModuleKind, Sandbox, SandboxShape, SandboxStats } from '../types.js';

/** A function as the hosts know it: its name and network mode (hosts never mix modes). */
export function functionKey(spec: Pick<LoadSpec, 'functionName' | 'network'>): string {
  return `${spec.functionName}:${spec.network ? 'net' : 'nonet'}`;
}

/** How the backend hands out hosts: a function's isolates share one, with up to N functions per host (see backend.ts). */
export interface HostBroker {
  hostFor(spec: LoadSpec): Promise<HostProcess>;
  /** Every successful hostFor is matched by one released, when that isolate is gone. */
  released(host: HostProcess, spec: LoadSpec): void;
}

interface Call {
  startedAt: number;
  logs: string[];
  logBytes: number;
  /** Unset only while a first call waits for its load (loadWithCall). */
  timer: NodeJS.Timeout | undefined;
  resolve: (o: InvokeOutcome) => void;
}

const MAX_LOG_BYTES = 64 * 1024;
const MIN_LOAD_TIMEOUT_MS = 10_000;
const TYPE_OF: Record<FailureKind, InvokeErrorType> = { handler: 'HandlerError', memory: 'MemoryLimitExceeded', timeout: 'Timeout', crash: 'SandboxCrashed' };

/** The event as JSON text, or why it cannot be sent. */
function serializeEvent(req: InvokeRequest): string | Error {
  try {
    return JSON.stringify(req.event ?? null);
  } catch (err) {
    return new Error(`the event could not be sent to the sandbox: ${(err as Error).message}`);
  }
}

/** The function's isolate build, or a clear refusal when it has none. */
async function readIsolateCode(spec: LoadSpec): Promise<string> {
  try {
    return await readFile(path.join(spec.codeDir, ISOLATE_CODE_ENTRY), 'utf8');
  } catch {
    throw new LaminaError(
      'SandboxCrashed',
      `function "${spec.functionName}" has no isolate build: it uses Node built-ins or was deployed before the isolate tier existed. ` +
        'Set "sandbox": "isolate" in lamina.json and redeploy to see why, or give it "sandbox": "process" or "container"',
    );
  }
}

export class IsolateSandbox implements Sandbox, IsolateListener {
  readonly tier = 'isolate' as const;
  private host: HostProcess | undefined;
  private spec: LoadSpec | undefined;
  private dead = false;
  private destroyed = false;
  private pending = new Map<string, Call>();
  private instanceLogs: string[] = [];
  private instanceLogBytes = 0;
  private peak = 0;
  private deathListeners: ((reason: string) => void)[] = [];
  /** What the loaded module is (from the host's load answer). */
  kind: ModuleKind | undefined;

  constructor(
    readonly id: string,
    readonly shape: SandboxShape,
    private readonly broker: HostBroker,
  ) {}

  get alive(): boolean {
    return !this.dead;
  }

  async load(spec: LoadSpec): Promise<void> {
    await this.loadWith(spec, undefined);
  }

  /**
   * `load` with the first call sent along: one exchange with the host instead of
   * two (Sandbox.loadWithCall). The call was prepared for an event handler; for a
   * fetch handler it is not run and undefined comes back.
   */
  async loadWithCall(spec: LoadSpec, req: InvokeRequest): Promise<{ outcome: Promise<InvokeOutcome> } | undefined> {
    return this.loadWith(spec, req);
  }

  private async loadWith(spec: LoadSpec, req: InvokeRequest | undefined): Promise<{ outcome: Promise<InvokeOutcome> } | undefined> {
    if (this.dead) throw new LaminaError('SandboxCrashed', 'the sandbox is not running');
    this.spec = spec;
    const code = await readIsolateCode(spec);
    const host = await this.broker.hostFor(spec);
    if (this.dead) {
      this.broker.released(host, spec);
      throw new LaminaError('SandboxCrashed', 'the sandbox was stopped while loading');
    }
    this.host = host;
    host.attach(this.id, functionKey(spec), this);
    const limit = Math.max(spec.timeoutMs, MIN_LOAD_TIMEOUT_MS);
    let timer: NodeJS.Timeout | undefined;
    let first: { call: Call; preLogs: number; reply: Promise<Reply>; budgetMs: number; outcome: Promise<InvokeOutcome> } | undefined;
    let onCallReply: ((r: Reply) => void) | undefined;
    let call: FirstCall | undefined;
    // An event that cannot be serialized is not sent along: the caller's invoke fails it, the load goes on.
    const event = req ? serializeEvent(req) : undefined;
    if (typeof event !== 'string') req = undefined;
    if (req && typeof event === 'string') {
      // Registered before the frame goes, so the call's logs find it; its clock and deadline start when the load is done.
      const reply = new Promise<Reply>((resolve) => (onCallReply = resolve));
      let resolveOutcome!: (o: InvokeOutcome) => void;
      const outcome = new Promise<InvokeOutcome>((resolve) => (resolveOutcome = resolve));
      const c: Call = { startedAt: 0, logs: this.instanceLogs, logBytes: this.instanceLogBytes, resolve: resolveOutcome, timer: undefined };
      this.instanceLogs = [];
      this.instanceLogBytes = 0;
      this.pending.set(req.requestId, c);
      const budgetMs = Math.max(0, req.deadlineMs - Date.now());
      first = { call: c, preLogs: c.logs.length, reply, budgetMs, outcome };
      call = { q: 0, id: req.requestId, event, context: this.contextOf(req, spec), budgetMs, ...(req.http ? { url: req.http.url } : {}) };
    }
    const reply = await Promise.race([
      host.request({ t: 'load', iso: this.id, memoryMb: spec.memoryMb, timeoutMs: spec.timeoutMs, network: spec.network, code, filename: `${spec.functionName}/${ISOLATE_CODE_ENTRY}`, fn: { name: spec.functionName, version: spec.functionVersion, env: spec.env }, ...(call ? { call } : {}) }, onCallReply),
      new Promise<Reply>((resolve) => (timer = setTimeout(() => resolve({ t: 'fail', q: -1, kind: 'timeout', message: `the function took longer than ${limit} ms to initialize` }), limit + 1000))),
    ]);
    clearTimeout(timer);
    if (reply.stats) this.peak = Math.max(this.peak, reply.stats.peak);
    if (reply.t === 'fail') {
      // The call did not run: it goes back to the caller with the load's error (its logs, the top level's, are kept for the next try).
      if (req && first) this.unregister(req.requestId, first.call);
      this.die(reply.kind, reply.message, false);
      if (reply.kind === 'handler') throw new LaminaError('HandlerError', `the function failed to initialize: ${reply.message}`, { stack: reply.stack, phase: 'init' });
      throw new LaminaError(TYPE_OF[reply.kind], `the function failed to initialize: ${reply.message}`);
    }
    if (reply.t === 'ok' && reply.kind === 'fetch') this.kind = 'fetch';
    if (!req || !first) return undefined;
    if (this.kind === 'fetch') {
      // Not run (it was prepared for an event handler): the caller prepares it anew and invokes.
      this.unregister(req.requestId, first.call);
      return undefined;
    }
    const c = first.call;
    // The top level's output (printed during the load) goes with this call, ahead of the call's own.
    c.logs.splice(first.preLogs, 0, ...this.instanceLogs);
    c.logBytes += this.instanceLogBytes;
    this.instanceLogs = [];
    this.instanceLogBytes = 0;
    c.startedAt = performance.now();
    const deadline = new Date(Date.now() + first.budgetMs).toISOString();
    c.timer = setTimeout(() => this.die('timeout', `the call exceeded its timeout (deadline ${deadline})`, false), first.budgetMs);
    void first.reply.then((r) => this.settle(req!.requestId, r));
    return { outcome: first.outcome };
  }

  /** Takes a first call that was not run off the books; its logs go back to the instance's. */
  private unregister(requestId: string, call: Call): void {
    if (this.pending.get(requestId) !== call) return;
    this.pending.delete(requestId);
    clearTimeout(call.timer);
    this.instanceLogs = [...call.logs, ...this.instanceLogs];
    this.instanceLogBytes += call.logBytes;
  }

  private contextOf(req: InvokeRequest, spec: LoadSpec): Omit<InvokeFrame['context'], 'deadlineMs'> {
    return { requestId: req.requestId, functionName: spec.functionName, functionVersion: spec.functionVersion, memoryLimitMb: spec.memoryMb, coldStart: req.coldStart };
  }

  invoke(req: InvokeRequest): Promise<InvokeOutcome> {
    const startedAt = performance.now();
    if (this.dead || !this.host || !this.spec) return Promise.resolve(this.failure('SandboxCrashed', 'the sandbox is not running', startedAt, []));
    const event = serializeEvent(req);
    // Nested too deep to serialize: the call fails, the isolate is untouched.
    if (typeof event !== 'string') return Promise.resolve(this.failure('SandboxCrashed', event.message, startedAt, []));
    return new Promise<InvokeOutcome>((resolve) => {
      const call: Call = {
        startedAt,
        logs: this.instanceLogs,
        logBytes: this.instanceLogBytes,
        resolve,
        timer: setTimeout(() => this.die('timeout', `the call exceeded its timeout (deadline ${new Date(req.deadlineMs).toISOString()})`, false), Math.max(0, req.deadlineMs - Date.now())),
      };
      // Output printed while loading or between calls goes with the next call.
      this.instanceLogs = [];
      this.instanceLogBytes = 0;
      this.pending.set(req.requestId, call);
      // Literals, not spreads: this runs for every call, and a spread costs a few times a literal.
      const spec = this.spec!;
      const context = { requestId: req.requestId, functionName: spec.functionName, functionVersion: spec.functionVersion, memoryLimitMb: spec.memoryMb, coldStart: req.coldStart, deadlineMs: req.deadlineMs };
      // An undefined url is left out of the frame by JSON.stringify.
      void this.host!.request({ t: 'invoke', iso: this.id, id: req.requestId, event, context, url: req.http?.url }).then((r) => this.settle(req.requestId, r));
    });
  }

  async stats(): Promise<SandboxStats> {
    if (this.dead || !this.host) return { memoryBytes: 0, maxMemoryBytes: this.peak };
    const r = await this.host.request({ t: 'stats', iso: this.id });
    const s = r.stats;
    if (!s) return { memoryBytes: 0, maxMemoryBytes: this.peak };
    this.peak = Math.max(this.peak, s.peak);
    return { memoryBytes: s.used, maxMemoryBytes: this.peak, cpuMs: s.cpuMs };
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.die('crash', 'the sandbox was stopped', false);
  }

  onDeath(listener: (reason: string) => void): void {
    this.deathListeners.push(listener);
  }

  /** IsolateListener: output of this isolate. */
  log(callId: string | null, data: string): void {
    // Empty pieces are dropped: a flood of them must cost nothing (the rest is capped by bytes).
    if (data.length === 0) return;
    const call = callId === null ? undefined : this.pending.get(callId);
    if (call) {
      if (call.logBytes >= MAX_LOG_BYTES) return;
      const piece = data.length > MAX_LOG_BYTES - call.logBytes ? data.slice(0, MAX_LOG_BYTES - call.logBytes) + '\n[lamina: log truncated]\n' : data;
      call.logBytes += piece.length;
      call.logs.push(piece);
    } else if (this.instanceLogBytes < MAX_LOG_BYTES) {
      const piece = data.slice(0, MAX_LOG_BYTES - this.instanceLogBytes);
      this.instanceLogBytes += piece.length;
      this.instanceLogs.push(piece);
    }
  }

  /** IsolateListener: a call's waitUntil work ended: the call ends now (billed to here). */
  settled(callId: string): void {
    const call = this.pending.get(callId);
    if (call) this.finish(callId, call, { ok: true, durationMs: performance.now() - call.startedAt, logs: call.logs.join(''), maxMemoryBytes: this.peak });
  }

  /** IsolateListener: the host ended this isolate, or died. */
  ended(kind: FailureKind, message: string): void {
    this.die(kind, message, true);
  }

  private settle(requestId: string, r: Reply): void {
    const call = this.pending.get(requestId);
    if (!call) return; // already answered (timeout, death)
    if (r.stats) this.notePeak(r.stats);
    let outcome: InvokeOutcome | undefined;
    if (r.t === 'result') {
      // The text came out of the isolate (whose JSON.stringify user code may replace): parse it as hostile.
      let value: unknown;
      try {
        value = JSON.parse(r.value);
      } catch {
        return this.die('crash', 'protocol violation: the function\'s result is not JSON (was JSON.stringify replaced?)', true);
      }
      outcome = { ok: true, value, durationMs: performance.now() - call.startedAt, logs: call.logs.join(''), maxMemoryBytes: this.peak };
    } else if (r.t === 'fail' && r.kind === 'handler') {
      const type = r.type === 'InvalidResponse' ? 'InvalidResponse' : 'HandlerError';
      outcome = { ok: false, error: { type, message: r.message, stack: r.stack }, durationMs: performance.now() - call.startedAt, logs: call.logs.join(''), maxMemoryBytes: this.peak };
    }
    if (outcome && (r.t === 'result' || r.t === 'fail') && r.more) {
      // Answered; waitUntil work goes on. The call stays pending (deadline, logs) until the host says it settled.
      const answer = call.resolve;
      outcome.settled = new Promise<InvokeOutcome>((resolve) => (call.resolve = resolve));
      answer(outcome);
    } else if (outcome) {
      this.finish(requestId, call, outcome);
    } else if (r.t === 'fail') {
      // The host already ended the isolate; the sandbox goes with it.
      this.die(r.kind, r.message, true);
    }
  }

  private notePeak(s: IsoStats): void {
    this.peak = Math.max(this.peak, s.peak);
  }

  private finish(requestId: string, call: Call, outcome: InvokeOutcome): void {
    clearTimeout(call.timer);
    this.pending.delete(requestId);
    call.resolve(outcome);
  }

  /**
   * Marks the sandbox dead (first, so the worker sees it when outcomes arrive),
   * fails calls in flight, and frees the isolate. `emit`: it died on its own.
   */
  private die(kind: FailureKind, message: string, emit: boolean): void {
    if (this.dead) return;
    this.dead = true;
    if (kind === 'memory') this.peak = Math.max(this.peak, (this.spec?.memoryMb ?? this.shape.memoryMb) * 1048576);
    const type = kind === 'handler' ? 'SandboxCrashed' : TYPE_OF[kind];
    for (const [id, call] of this.pending) this.finish(id, call, this.failure(type, message, call.startedAt, call.logs));
    const host = this.host;
    if (host) {
      host.detach(this.id);
      if (host.alive) void host.request({ t: 'dispose', iso: this.id });
      this.broker.released(host, this.spec!);
    }
    if (emit && !this.destroyed) for (const l of this.deathListeners) l(`${type}: ${message}`);
  }

  private failure(type: InvokeErrorType, message: string, startedAt: number, logs: string[]): InvokeOutcome {
    return { ok: false, error: { type, message }, durationMs: performance.now() - startedAt, logs: logs.join(''), maxMemoryBytes: this.peak };
  }
}
