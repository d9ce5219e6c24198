// Frames between the isolate backend (in the server) and an isolate host
// process: newline-delimited JSON over the host's fd 3. `q` pairs a request
// with its reply. Events and results cross as JSON text, parsed once at each end.

export interface LoadFrame {
  t: 'load';
  q: number;
  iso: string;
  memoryMb: number;
  /** Bound on the top-level code's run and on timer callbacks fired outside a call. */
  timeoutMs: number;
  network: boolean;
  code: string;
  /** Script name shown in stack traces. */
  filename: string;
  fn: { name: string; version: number; env: Record<string, string> };
  /**
   * The first call, sent along with the load (one exchange instead of two). Run
   * right after a successful load when the module is an event handler (the call
   * was prepared for one); answered on its own `q`: a call reply, or `ok` when it
   * was not run (the load failed, or the module is a fetch handler).
   */
  call?: FirstCall;
}

export interface FirstCall {
  q: number;
  id: string;
  event: string;
  /** As InvokeFrame's, but the deadline is set by the host when the call starts: now + budgetMs. */
  context: Omit<InvokeFrame['context'], 'deadlineMs'>;
  budgetMs: number;
  url?: string;
}

export interface InvokeFrame {
  t: 'invoke';
  q: number;
  iso: string;
  id: string;
  event: string;
  context: { requestId: string; functionName: string; functionVersion: number; memoryLimitMb: number; deadlineMs: number; coldStart: boolean };
  /** Fetch handlers: the URL the client asked for (request.url). */
  url?: string;
}

export type BackendFrame =
  | LoadFrame
  | InvokeFrame
  | { t: 'stats'; q: number; iso: string }
  | { t: 'dispose'; q: number; iso: string };

/** How an isolate call ended badly. `handler`: the function threw; the others end the isolate. */
export type FailureKind = 'handler' | 'memory' | 'timeout' | 'crash';

export interface IsoStats {
  /** V8 used heap plus array buffers, in bytes. */
  used: number;
  /** Highest `used` seen by the host. */
  peak: number;
  cpuMs: number;
}

export type HostFrame =
  | { t: 'ready'; pid: number }
  /** `kind` (load only): whether the module is a fetch handler. */
  | { t: 'ok'; q: number; stats?: IsoStats; kind?: 'fetch' | 'handler' }
  /** `type` (kind handler only): "InvalidResponse" when a fetch handler's answer could not be converted. `more`: see result. */
  | { t: 'fail'; q: number; kind: FailureKind; message: string; stack?: string; stats?: IsoStats; type?: string; more?: boolean }
  /** A call's result: `value` is the return value's JSON text. `more`: waitUntil work goes on; a `settled` frame follows. */
  | { t: 'result'; q: number; value: string; stats: IsoStats; more?: boolean }
  /** The waitUntil work of call `id` ended (or failed: `error`). */
  | { t: 'settled'; iso: string; id: string }
  | { t: 'log'; iso: string; id: string | null; data: string }
  /** An isolate ended outside any call (e.g. a timer callback ran away). */
  | { t: 'dead'; iso: string; kind: FailureKind; message: string };
