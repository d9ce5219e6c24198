// The sandbox layer's contract. A backend (process, container, isolate) starts
// generic sandboxes; the worker specializes one with a function version (`load`),
// sends it calls (`invoke`) and destroys it. Nothing above this layer knows how
// isolation is done.
import type { SchedSample } from './sched-stat.js';

export type SandboxTier = 'container' | 'process' | 'isolate';
export type RuntimeName = 'node' | 'python';

/** What must be fixed when a generic sandbox is started (pool key ingredients). */
export interface SandboxShape {
  runtime: RuntimeName;
  memoryMb: number;
  network: boolean;
}

/** One function version, as the sandbox needs it to specialize. */
export interface LoadSpec {
  functionName: string;
  functionVersion: number;
  /** Host directory holding the version's code files (read-only to everyone). */
  codeDir: string;
  /** Entry file, relative to codeDir. */
  entry: string;
  handler: string;
  env: Record<string, string>;
  memoryMb: number;
  timeoutMs: number;
  network: boolean;
  /** Installed dependencies (src/packages): the package-cache entry and its node_modules dir on the host (read-only). The tier makes them resolvable as `node_modules` beside the code. */
  packages?: { hash: string; dir: string };
  /** Most processes/threads in the sandbox (manifest `processes`); absent: the tier's default. */
  maxProcesses?: number;
}

export interface InvokeRequest {
  requestId: string;
  /** Parsed JSON event (for HTTP functions, the function-URL 2.0 event). */
  event: unknown;
  /** Epoch ms at which the call is cut off. */
  deadlineMs: number;
  coldStart: boolean;
  /** HTTP functions only (not json mode): how the runtime should treat the event (the runtime protocol's `http` field). */
  http?: HttpFrame;
}

/** The `http` field of an invoke frame (docs/runtime-protocol.md). */
export interface HttpFrame {
  mode: 'request' | 'fetch' | 'wsgi' | 'asgi';
  /** The URL the client asked for, /run/:name included. */
  url: string;
  /** /run/:name */
  basePath: string;
}

/** What a loaded module is: a fetch handler (`fetch(request, env, ctx)`) or an event handler. */
export type ModuleKind = 'fetch' | 'handler';

/** Error types a call can end with; they map 1:1 onto the HTTP error model. */
export type InvokeErrorType = 'HandlerError' | 'Timeout' | 'SandboxCrashed' | 'MemoryLimitExceeded' | 'InvalidResponse';

export interface InvokeError {
  type: InvokeErrorType;
  message: string;
  stack?: string;
}

export interface InvokeOutcome {
  ok: boolean;
  /** The handler's return value (ok only); undefined is sent as null. */
  value?: unknown;
  error?: InvokeError;
  /** Wall time of the call as the worker bounds it, in ms (fractional). */
  durationMs: number;
  /** Captured stdout/stderr of this call (already capped). */
  logs: string;
  /** Peak memory of the sandbox so far, in bytes (0 when unknown). */
  maxMemoryBytes: number;
  /**
   * Set when the call answered but work it handed to waitUntil goes on: resolves
   * when the call really ends (its whole duration and logs, for billing; an
   * error when it ran out of time or crashed). The call's slot stays taken till then.
   */
  settled?: Promise<InvokeOutcome>;
}

export interface SandboxStats {
  /** Current resident memory in bytes. */
  memoryBytes: number;
  /** Peak resident memory in bytes over the sandbox's life. */
  maxMemoryBytes: number;
  /** CPU time consumed so far, in ms, where the tier can tell (else undefined). */
  cpuMs?: number;
}

export interface Sandbox {
  readonly id: string;
  readonly tier: SandboxTier;
  readonly shape: SandboxShape;
  /** False once the sandbox died or was destroyed; the worker must then drop it. */
  readonly alive: boolean;
  /** Known once `load` resolved: whether the module is a fetch handler (runtimes that cannot tell leave it undefined = handler). */
  readonly kind?: ModuleKind;
  /** Specializes a generic sandbox with one function version. Called once. Rejects with an Error whose message says why. */
  load(spec: LoadSpec): Promise<void>;
  /**
   * Optional (the isolate tier): `load` with the first call sent along, one
   * exchange with the sandbox instead of two. `req` was prepared for an event
   * handler (a module's kind is only known once loaded): when the module turns out
   * to be a fetch handler the call is not run and the promise resolves to
   * undefined, as it does when the event cannot be sent; the caller then prepares
   * and sends it with `invoke`. Rejects as `load` does (the call did not run).
   * Otherwise resolves once loaded, with the call running: `outcome` (never
   * rejecting) as from invoke, its duration and deadline counted from the load's end.
   */
  loadWithCall?(spec: LoadSpec, req: InvokeRequest): Promise<{ outcome: Promise<InvokeOutcome> } | undefined>;
  /**
   * Optional (tiers that run the node runtime): imports `spec`'s installed
   * dependencies ahead of `load` (with its environment), so a later `load` of
   * the same spec finds them in the module cache. Rejects (the sandbox is then
   * destroyed) when a dependency fails to import.
   */
  preload?(spec: LoadSpec): Promise<void>;
  /**
   * Runs one call. Never rejects: failures come back as outcome.error. After a
   * Timeout, SandboxCrashed or MemoryLimitExceeded outcome the sandbox is dead.
   * Calls may overlap up to the function's instanceConcurrency.
   */
  invoke(req: InvokeRequest): Promise<InvokeOutcome>;
  /** Freezes an idle sandbox (no CPU while paused); optional per tier. */
  pause?(): Promise<void>;
  resume?(): Promise<void>;
  stats(): Promise<SandboxStats>;
  /**
   * Optional: the sandbox's time on a CPU and waiting for one so far (ms), read
   * synchronously from kernel counters, or undefined when it cannot tell. The worker
   * samples it while calls wait, to see whether a function's instances are CPU-bound.
   */
  sched?(): SchedSample | undefined;
  /** Kills the sandbox and frees everything it holds. Idempotent. */
  destroy(): Promise<void>;
  /** Called once when the sandbox dies on its own (not by destroy). */
  onDeath(listener: (reason: string) => void): void;
}

/** A backend starts fresh, generic sandboxes of one tier. */
export interface SandboxBackend {
  readonly tier: SandboxTier;
  /** Whether this backend can run on this machine, and why not. */
  probe(): Promise<{ ok: boolean; reason: string }>;
  /** Which runtimes this tier can host. */
  supports(runtime: RuntimeName): boolean;
  /** Starts a generic sandbox, ready to `load`. */
  create(shape: SandboxShape): Promise<Sandbox>;
  /** Frees backend-wide resources (run dirs, cgroup parents). */
  close(): Promise<void>;
}
