// Lamina's Node runtime: the program that runs inside a sandbox. It starts
// generic, waits on fd 3 for a `load` frame naming the function's code, then
// serves `invoke` frames. The wire protocol is docs/runtime-protocol.md; this
// file is bundled alone into dist/runtime/node.mjs, so it imports only node:*
// and pure modules of its own.
import { AsyncLocalStorage } from 'node:async_hooks';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { answer, CallContext, findFetch, InvalidResponseError, requestOf, type FetchTarget } from './fetch-call.js';
import { lambdaContextNames } from '../lambda-context.js';
import { installQuickResponse } from './quick-response.js';

type Handler = (event: unknown, context: unknown) => unknown;
interface ErrorInfo {
  type: string;
  message: string;
  stack?: string;
}

/** Largest JSON result a call may return (the HTTP contract's payload cap). */
const MAX_RESULT_BYTES = 6 * 1024 * 1024;
/** Log bytes forwarded per call; the rest is dropped with one marker. */
const MAX_LOG_BYTES = 64 * 1024;

const channel = new net.Socket({ fd: 3, readable: true, writable: true });
const currentCall = new AsyncLocalStorage<{ id: string; logBytes: number }>();
let handler: Handler | undefined;
/** Set when the module is a fetch handler (it then serves every call, whatever http.event says). */
let fetchTarget: FetchTarget | undefined;
/** The manifest's env, frozen: a fetch handler's `env` binding. */
let fnEnv: Readonly<Record<string, string>> = Object.freeze({});
let fn = { name: '', version: 0, memoryMb: 0, timeoutMs: 0 };

function send(frame: object): void {
  write(JSON.stringify(frame) + '\n');
}

/**
 * Frames written in one turn of the event loop leave in one writev: under load the
 * results of many calls share a kernel write and a wake-up of the worker. The
 * uncork waits for setImmediate (after every I/O callback of the turn), not nextTick.
 */
let corked = false;
function write(line: string): void {
  if (!corked) {
    corked = true;
    channel.cork();
    setImmediate(flush);
  }
  channel.write(line);
}
function flush(): void {
  if (!corked) return;
  corked = false;
  channel.uncork();
}
// A handler that calls process.exit() still gets out the frames written before it.
process.on('exit', flush);

/**
 * Log frames leave at once, after anything corked (order kept): the last lines before an
 * endless loop, an abort or a kill for memory must reach the call's record.
 */
function sendNow(frame: object): void {
  flush();
  channel.write(JSON.stringify(frame) + '\n');
}

/** Error texts are capped, so a huge message cannot push a frame past the worker's frame cap. */
const MAX_ERROR_TEXT = 64 * 1024;
const capText = (t: string): string => (t.length > MAX_ERROR_TEXT ? t.slice(0, MAX_ERROR_TEXT) + '... [truncated]' : t);

function errorInfo(err: unknown, type = 'HandlerError'): ErrorInfo {
  const info = rawErrorInfo(err, type);
  return { type: info.type, message: capText(String(info.message)), ...(typeof info.stack === 'string' ? { stack: capText(info.stack) } : {}) };
}

function rawErrorInfo(err: unknown, type: string): ErrorInfo {
  if (err instanceof InvalidResponseError) return { type: 'InvalidResponse', message: err.message };
  if (err instanceof Error) return { type, message: err.message || err.name, stack: err.stack };
  let message: string;
  try {
    message = typeof err === 'string' ? err : JSON.stringify(err) ?? String(err);
  } catch {
    message = String(err);
  }
  return { type, message };
}

// Route console output to the call that produced it, so logs are per invocation
// even when one instance serves several calls at once.
function capture(stream: 'stdout' | 'stderr'): void {
  const target = process[stream];
  target.write = ((chunk: unknown, encoding?: unknown, cb?: unknown): boolean => {
    const call = currentCall.getStore();
    let data = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    if (call) {
      if (call.logBytes >= MAX_LOG_BYTES) data = '';
      else if (call.logBytes + data.length > MAX_LOG_BYTES) data = data.slice(0, MAX_LOG_BYTES - call.logBytes) + '\n[lamina: log truncated]\n';
      call.logBytes += data.length;
    }
    if (data) sendNow({ t: 'log', id: call?.id ?? null, stream, data });
    const done = typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') process.nextTick(done as () => void);
    return true;
  }) as typeof target.write;
}

function pickHandler(mod: Record<string, unknown>, name: string): Handler | undefined {
  const named = mod[name];
  if (typeof named === 'function') return named as Handler;
  const def = mod.default as Record<string, unknown> | ((...a: unknown[]) => unknown) | undefined;
  // CommonJS bundles expose module.exports as the default export.
  if (def && typeof def === 'object' && typeof def[name] === 'function') return def[name] as Handler;
  if (typeof def === 'function') {
    const inner = (def as unknown as Record<string, unknown>)[name];
    return typeof inner === 'function' ? (inner as Handler) : (def as Handler);
  }
  return undefined;
}

function setEnv(env: Record<string, string>): void {
  // The environment is exactly the manifest's, whatever the launcher left (e.g. PWD).
  for (const k of Object.keys(process.env)) delete process.env[k];
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
}

/** Imports the function's dependencies (a generated module) before `load`, with the function's environment. */
async function preload(frame: { entry: string; env: Record<string, string> }): Promise<void> {
  setEnv(frame.env);
  try {
    await import(pathToFileURL(frame.entry).href);
    send({ t: 'preloaded' });
  } catch (err) {
    send({ t: 'preload_error', error: errorInfo(err, 'InitError') });
  }
}

async function load(frame: { entry: string; handler: string; env: Record<string, string>; function: typeof fn }): Promise<void> {
  fn = frame.function;
  setEnv(frame.env);
  fnEnv = Object.freeze({ ...frame.env });
  try {
    const mod = (await import(pathToFileURL(frame.entry).href)) as Record<string, unknown>;
    fetchTarget = findFetch(mod);
    if (fetchTarget) {
      handler = (request: unknown, ctx: unknown) => fetchTarget!.fetch(request as Request, fnEnv as Record<string, string>, ctx as never);
      send({ t: 'loaded', kind: 'fetch' });
      return;
    }
    handler = pickHandler(mod, frame.handler);
    if (!handler) {
      const found = Object.keys(mod).join(', ') || 'none';
      send({ t: 'load_error', error: { type: 'HandlerNotFound', message: `no function "${frame.handler}" exported by the entry file (exports: ${found})` } });
      return;
    }
    send({ t: 'loaded', kind: 'handler' });
  } catch (err) {
    send({ t: 'load_error', error: errorInfo(err, 'InitError') });
  }
}

type InvokeFrame = { id: string; event: unknown; http?: { mode: string; url: string }; context: { requestId: string; functionName: string; functionVersion: number; memoryLimitMb: number; deadlineMs: number; coldStart: boolean } };

/**
 * A fetch handler's call: the answer goes out as soon as the Response is read;
 * work handed to ctx.waitUntil goes on (inside the deadline; the worker keeps
 * the call open and bills it) and a `settled` frame ends the call.
 */
async function invokeFetch(started: number, frame: InvokeFrame): Promise<void> {
  const ctx = new CallContext();
  let reply: { more?: true } & Record<string, unknown>;
  try {
    const res = await fetchTarget!.fetch(requestOf(frame.http?.url ?? 'http://localhost/', frame.event as never), fnEnv as Record<string, string>, ctx);
    const now = answer(res, MAX_RESULT_BYTES);
    const value = now instanceof Promise ? await now : now;
    reply = { t: 'result', id: frame.id, ok: true, value, ms: performance.now() - started };
  } catch (err) {
    reply = { t: 'result', id: frame.id, ok: false, error: errorInfo(err), ms: performance.now() - started };
  }
  // Set, not spread in: Node 20's V8 spreads object literals slowly (see invoke).
  if (ctx.pending()) reply.more = true;
  send(reply);
  if (reply.more) {
    await ctx.settle();
    send({ t: 'settled', id: frame.id, ms: performance.now() - started });
  }
}

async function invoke(arrived: number, frame: InvokeFrame): Promise<void> {
  if (fetchTarget) return currentCall.run({ id: frame.id, logBytes: 0 }, () => invokeFetch(arrived, frame));
  const c = frame.context;
  // Object.assign, not spread: Node 20's V8 builds `{...a, ...b}` of these objects in ~16 us, assign in under 1.
  const context = Object.assign({}, c, lambdaContextNames(c, process.env.AWS_REGION), {
    getRemainingTimeInMillis: () => Math.max(0, c.deadlineMs - Date.now()),
  });
  // Measured from the frame's arrival: timers the handler sets count from the
  // same event-loop tick, so a 120 ms sleep measures 120 ms, not a hair less.
  const started = arrived;
  await currentCall.run({ id: frame.id, logBytes: 0 }, async () => {
    let reply: object;
    try {
      const value = await handler!(frame.event, context);
      const ms = performance.now() - started;
      let json: string | undefined;
      try {
        json = JSON.stringify(value === undefined ? null : value);
      } catch (err) {
        throw new TypeError(`the handler's return value is not JSON-serializable: ${(err as Error).message}`);
      }
      // Bytes, not characters: the worker caps a frame's bytes (UTF-8 may take 3 per character).
      const bytes = json === undefined ? 0 : Buffer.byteLength(json);
      if (bytes > MAX_RESULT_BYTES) throw new RangeError(`the handler's return value is ${bytes} bytes; the cap is ${MAX_RESULT_BYTES}`);
      // Splice the already-serialized value in, rather than serializing twice.
      const head = JSON.stringify({ t: 'result', id: frame.id, ok: true, ms });
      write(head.slice(0, -1) + ',"value":' + (json ?? 'null') + '}\n');
      return;
    } catch (err) {
      reply = { t: 'result', id: frame.id, ok: false, error: errorInfo(err), ms: performance.now() - started };
    }
    send(reply);
  });
}

function onFrame(line: string, arrived: number): void {
  let frame: { t: string } & Record<string, unknown>;
  try {
    frame = JSON.parse(line);
  } catch {
    process.exit(70);
  }
  if (frame.t === 'invoke') {
    if (!handler) send({ t: 'result', id: frame.id, ok: false, error: { type: 'HandlerError', message: 'runtime not loaded' } });
    else void invoke(arrived, frame as never);
  } else if (frame.t === 'load') {
    void load(frame as never);
  } else if (frame.t === 'preload' && !handler) {
    void preload(frame as never);
  }
}

// A crash outside any call (or a dangling promise) ends the instance, as Lambda does:
// tell the worker why, then exit so it replaces us.
function fatal(err: unknown): void {
  try {
    send({ t: 'fatal', error: errorInfo(err) });
  } finally {
    channel.end(() => process.exit(1));
    setTimeout(() => process.exit(1), 100).unref();
  }
}
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

// Stack traces point at the function's own sources (the bundle carries an inline map).
process.setSourceMapsEnabled(true);

capture('stdout');
capture('stderr');
// Before any function code loads: its `new Response(...)` keeps an in-memory body as given (quick-response.ts).
installQuickResponse();

// Frames split across chunks are joined only when their newline arrives, so a
// multi-megabyte event is scanned once, not once per chunk.
let pending: string[] = [];
channel.setEncoding('utf8');
channel.on('data', (chunk: string) => {
  const arrived = performance.now();
  let start = 0;
  let nl = chunk.indexOf('\n');
  while (nl !== -1) {
    let line = chunk.slice(start, nl);
    if (pending.length > 0) {
      pending.push(line);
      line = pending.join('');
      pending = [];
    }
    if (line) onFrame(line, arrived);
    start = nl + 1;
    nl = chunk.indexOf('\n', start);
  }
  if (start < chunk.length) pending.push(chunk.slice(start));
});
// The worker holds the other end: when it goes away, so do we.
channel.on('end', () => process.exit(0));
channel.on('error', () => process.exit(0));

send({ t: 'ready', runtime: 'node', version: process.version, pid: process.pid });
