// The server's handle on one isolate host process: spawn, request/reply over
// fd 3, events routed to the isolates' sandboxes, and what its death means.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Duplex } from 'node:stream';
import type { SandboxCgroup } from '../container/cgroups.js';
import { MAX_HOST_FRAME_BYTES, parseHostFrame } from '../frames.js';
import { LineChannel, VIOLATION } from '../line-channel.js';
import type { BackendFrame, FailureKind, HostFrame } from './protocol.js';

type Request = BackendFrame extends infer F ? (F extends { q: number } ? Omit<F, 'q'> : never) : never;
export type Reply = Extract<HostFrame, { q: number }>;

/** What a host tells the sandbox of one of its isolates. */
export interface IsolateListener {
  log(callId: string | null, data: string): void;
  /** The isolate (or its whole host) ended outside the sandbox's own doing. */
  ended(kind: FailureKind, message: string): void;
  /** A call's waitUntil work ended. */
  settled(callId: string): void;
}

const READY_TIMEOUT_MS = 10_000;
const MiB = 1024 * 1024;
/** Per isolate beyond its heap cap: code space, handles and isolated-vm's bookkeeping. */
const ISOLATE_SLACK_MB = 16;

/** A host's cgroup: its memory limit is `overheadBytes` plus the caps of the isolates it holds. */
export interface HostCgroup {
  cgroup: SandboxCgroup;
  overheadBytes: number;
}
/** V8's fatal out-of-memory reports: one allocation larger than an isolate's heap limit aborts the host. */
const OOM_RE = /is_heap_oom = 1|Reached heap limit|heap out of memory|CALL_AND_RETRY_LAST|invalid size error|Allocation failed/i;

/** How a host ended, for the backend's assignment (isolate/backend.ts): who was running when it died. */
export interface HostDeath {
  kind: FailureKind;
  /** The backend stopped it (idle, close): nobody is to blame. */
  stopped: boolean;
  /** Functions with a load or call in flight when it died: one of them made it die. */
  suspects: string[];
  /** Distinct functions that had isolates here. */
  functions: number;
}

export class HostProcess {
  idleTimer: NodeJS.Timeout | undefined;
  private readonly child: ChildProcess;
  private readonly channel: LineChannel<HostFrame, BackendFrame>;
  private readonly replies = new Map<number, (f: Reply) => void>();
  private readonly isolates = new Map<string, IsolateListener>();
  /** Each attached isolate's function (`name:net`). */
  private readonly functionOf = new Map<string, string>();
  /** Loads and calls awaiting their reply (q -> isolate), and answered calls whose waitUntil work goes on (`iso/id` -> isolate): who runs code here. */
  private readonly inFlight = new Map<number, string>();
  private readonly settling = new Map<string, string>();
  private readonly callIdOf = new Map<number, string>();
  private stopping = false;
  /** Set once the host has ended. */
  ended: HostDeath | undefined;
  private seq = 0;
  private outputTail = '';
  private death: { kind: FailureKind; message: string } | undefined;
  private readyWaiter: ((err?: Error) => void) | undefined;
  private readonly exited: Promise<void>;
  private exitListeners: (() => void)[] = [];
  private violation: string | undefined;
  /** Each attached isolate's memory cap, which the cgroup's limit follows. */
  private readonly isolateBytes = new Map<string, number>();

  private constructor(command: string, args: string[], cwd: string, private readonly cg?: HostCgroup) {
    this.child = spawn(command, args, { env: {}, cwd, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.child.once('close', () => resolve());
      this.child.once('error', () => resolve());
    });
    const tail = (b: Buffer) => (this.outputTail = (this.outputTail + b.toString('utf8')).slice(-8192));
    this.child.stdout!.on('data', tail);
    this.child.stderr!.on('data', tail);
    this.child.on('error', (err) => this.onExit(`could not start: ${err.message}`));
    // 'close' rather than 'exit': by then all its output (V8's report of a fatal error) has arrived.
    this.child.on('close', (code, signal) => {
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      // The kernel's OOM killer leaves no output: the cgroup's count tells (WebAssembly memory lands here).
      if (signal === 'SIGKILL' && cg) void cg.cgroup.oomKills().catch(() => 0).then((n) => this.onExit(how, n > 0));
      else this.onExit(how);
    });
    // Isolates run hostile code in this process: its frames are checked like a runtime's, and a bad one ends the host.
    this.channel = new LineChannel<HostFrame, BackendFrame>(this.child.stdio[3] as Duplex, (f) => this.onFrame(f), (reason) => this.violated(reason), {
      maxBytes: MAX_HOST_FRAME_BYTES,
      parse: (raw) => parseHostFrame(raw) as HostFrame,
    });
  }

  /** With `cg`, `command` must join the cgroup before it execs the host (isolate/backend.ts does). */
  static async start(command: string, args: string[], cwd: string, cg?: HostCgroup): Promise<HostProcess> {
    const host = new HostProcess(command, args, cwd, cg);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => host.readyWaiter?.(new Error('the isolate host did not start in time')), READY_TIMEOUT_MS);
      host.readyWaiter = (err) => {
        clearTimeout(timer);
        host.readyWaiter = undefined;
        if (err) reject(err);
        else resolve();
      };
    }).catch(async (err: Error) => {
      host.kill();
      await host.exited;
      throw err;
    });
    return host;
  }

  get alive(): boolean {
    return this.death === undefined;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Isolates attached to this host. */
  get size(): number {
    return this.isolates.size;
  }

  /**
   * Sends a request; a dead host answers every request with why it died. A load
   * with its first call along (`frame.call`) gets two replies: the load's (returned)
   * and the call's (`onCallReply`), each on its own `q`.
   */
  request(frame: Request, onCallReply?: (r: Reply) => void): Promise<Reply> {
    if (this.death) {
      onCallReply?.({ t: 'fail', q: -1, ...this.death });
      return Promise.resolve({ t: 'fail', q: -1, ...this.death });
    }
    if (frame.t === 'load' && this.cg) {
      // Room for the new isolate first, then its load.
      this.isolateBytes.set(frame.iso, (frame.memoryMb + ISOLATE_SLACK_MB) * MiB);
      return this.applyMemoryLimit().then(() => this.send(frame, onCallReply));
    }
    return this.send(frame, onCallReply);
  }

  private send(frame: Request, onCallReply?: (r: Reply) => void): Promise<Reply> {
    if (this.death) {
      onCallReply?.({ t: 'fail', q: -1, ...this.death });
      return Promise.resolve({ t: 'fail', q: -1, ...this.death });
    }
    const q = ++this.seq;
    if (frame.t === 'load' || frame.t === 'invoke') this.inFlight.set(q, frame.iso);
    if (frame.t === 'invoke') this.callIdOf.set(q, frame.id);
    let out = frame as BackendFrame;
    if (frame.t === 'load' && frame.call && onCallReply) {
      const cq = ++this.seq;
      this.inFlight.set(cq, frame.iso);
      this.callIdOf.set(cq, frame.call.id);
      this.replies.set(cq, onCallReply);
      out = { ...frame, call: { ...frame.call, q: cq } } as BackendFrame;
    }
    // The frame is this request's own: `q` goes on it in place (a spread per call costs more).
    (out as { q: number }).q = q;
    return new Promise((resolve) => {
      this.replies.set(q, resolve);
      this.channel.send(out);
    });
  }

  attach(iso: string, fn: string, listener: IsolateListener): void {
    this.isolates.set(iso, listener);
    this.functionOf.set(iso, fn);
  }

  detach(iso: string): void {
    this.isolates.delete(iso);
    this.functionOf.delete(iso);
    if (this.isolateBytes.delete(iso)) void this.applyMemoryLimit();
  }

  /** Sets the cgroup limit to the overhead plus the attached isolates' caps (a shrink below current use may be refused: the next change retries). */
  private async applyMemoryLimit(): Promise<void> {
    if (!this.cg || this.death) return;
    let bytes = this.cg.overheadBytes;
    for (const b of this.isolateBytes.values()) bytes += b;
    await this.cg.cgroup.setMemoryLimit(bytes).catch(() => undefined);
  }

  onExited(listener: () => void): void {
    this.exitListeners.push(listener);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.kill();
    await this.exited;
  }

  private onFrame(f: HostFrame): void {
    switch (f.t) {
      case 'ready':
        return this.readyWaiter?.();
      case 'log':
        return this.isolates.get(f.iso)?.log(f.id, f.data);
      case 'settled':
        this.settling.delete(`${f.iso}/${f.id}`);
        return this.isolates.get(f.iso)?.settled(f.id);
      case 'dead': {
        const l = this.isolates.get(f.iso);
        this.isolates.delete(f.iso);
        this.functionOf.delete(f.iso);
        return l?.ended(f.kind, f.message);
      }
      default: {
        const reply = this.replies.get(f.q);
        this.replies.delete(f.q);
        const iso = this.inFlight.get(f.q);
        const id = this.callIdOf.get(f.q);
        this.inFlight.delete(f.q);
        this.callIdOf.delete(f.q);
        if ((f.t === 'result' || f.t === 'fail') && f.more && iso !== undefined && id !== undefined) this.settling.set(`${iso}/${id}`, iso);
        reply?.(f);
      }
    }
  }

  private violated(reason: string): void {
    if (reason.startsWith(VIOLATION)) this.violation ??= reason;
    this.kill();
  }

  private onExit(how: string, cgroupOom = false): void {
    if (this.death) return;
    const tail = this.outputTail.trim();
    this.death = this.violation
      ? { kind: 'crash', message: `the isolate host broke its protocol (${this.violation})` }
      : cgroupOom
      ? { kind: 'memory', message: `this function's isolate host went over its memory limit (its isolates' caps plus ${Math.round(this.cg!.overheadBytes / MiB)} MB, WebAssembly memory included), which ends the host (every call in flight there fails)` }
      : OOM_RE.test(tail)
      ? { kind: 'memory', message: 'an isolate made an allocation larger than its memory limit, which ends its whole isolate host (every call in flight there fails)' }
      : { kind: 'crash', message: `the isolate host ${how}${tail ? `: ${tail.split('\n').slice(-3).join(' | ')}` : ''}` };
    if (this.cg) void this.cg.cgroup.remove().catch(() => undefined);
    const suspectIsos = new Set([...this.inFlight.values(), ...this.settling.values()]);
    const suspects = new Set([...suspectIsos].map((iso) => this.functionOf.get(iso)).filter((f): f is string => f !== undefined));
    const functions = new Set(this.functionOf.values()).size;
    this.ended = { kind: this.death.kind, stopped: this.stopping, suspects: [...suspects], functions };
    // Shared by several functions: only code that was running can have caused the death. One function
    // running: it did, and gets the death's kind. Several: nobody can tell which, so their calls fail as
    // SandboxCrashed. Idle neighbours were bystanders: their next call starts an isolate in another host.
    const shared = functions > 1;
    const culprit = suspects.size === 1;
    const suspectWhy = culprit
      ? `${this.death.message}; it was the only function running in the isolate host it shared with ${functions - 1} other(s)`
      : `the isolate host this function shared with ${functions - 1} other function(s) ended while ${suspects.size} of them were running (${this.death.message})`;
    const bystanderWhy = `the isolate host this function shared with ${functions - 1} other function(s) ended (${this.death.message}); this function was idle there and its next call starts a new isolate`;
    const fail = (iso: string): { kind: FailureKind; message: string } =>
      !shared ? this.death! : suspects.has(this.functionOf.get(iso) ?? '') ? { kind: culprit ? this.death!.kind : 'crash', message: suspectWhy } : { kind: 'crash', message: bystanderWhy };
    const pending = [...this.replies.entries()];
    this.replies.clear();
    this.readyWaiter?.(new Error(this.death.message));
    for (const [q, reply] of pending) {
      const iso = this.inFlight.get(q);
      reply({ t: 'fail', q: -1, ...(iso === undefined ? this.death : fail(iso)) });
    }
    this.inFlight.clear();
    const listeners = [...this.isolates.entries()];
    this.isolates.clear();
    for (const [iso, l] of listeners) {
      const f = fail(iso);
      l.ended(f.kind, f.message);
    }
    for (const l of this.exitListeners) l();
  }
}
