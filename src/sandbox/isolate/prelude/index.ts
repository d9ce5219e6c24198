// The isolate's runtime, run once in each fresh context before the function's
// code: web-standard globals, console capture per call, and the three entry
// points the host calls (boot, invoke, fire). The host's callbacks arrive as
// `__lh_*` globals and are taken off the global object here.
import { atob, btoa } from './base64.js';
import { calls, currentCall, enter } from './calls.js';
import { structuredClone } from './clone.js';
import { format, makeConsole } from './console.js';
import { makeCrypto } from './crypto.js';
import { DOMExceptionPolyfill } from './dom-exception.js';
import { HeadersPolyfill, makeFetch, type FetchRef } from './fetch.js';
import { InvalidResponse, RequestPolyfill, ResponsePolyfill, answerOf, requestOf } from './http.js';
import { TextDecoderPolyfill, TextEncoderPolyfill } from './text.js';
import { makeTimers } from './timers.js';
import { lambdaContextNames } from '../../../runtime/lambda-context.js';
import { URLSearchParamsPolyfill, makeURL } from './url.js';

type Handler = (event: unknown, context: unknown) => unknown;

const g = globalThis as unknown as Record<string, unknown>;
function take<T>(name: string): T {
  const v = g[name] as T;
  // A top-level `var` (the function's bundle) makes a property that cannot be deleted.
  if (!Reflect.deleteProperty(g, name)) g[name] = undefined;
  return v;
}
const host = {
  log: take<(id: string | null, text: string) => void>('__lh_log'),
  timer: take<(id: number, ms: number) => void>('__lh_timer'),
  clear: take<(id: number) => void>('__lh_clear'),
  random: take<(n: number) => string>('__lh_random'),
  url: take<(input: string, base?: string) => string>('__lh_url'),
  urlset: take<(href: string, part: string, value: string) => string>('__lh_urlset'),
  fetch: take<FetchRef | undefined>('__lh_fetch'),
  done: take<(answers: string[]) => void>('__lh_done'),
};

/** Largest JSON result (the HTTP contract's payload cap) and log bytes kept per call. */
const MAX_RESULT_BYTES = 6 * 1024 * 1024;
const MAX_LOG_BYTES = 64 * 1024;

function write(text: string): void {
  const id = currentCall();
  const call = id === null ? undefined : calls.get(id);
  if (call) {
    if (call.logBytes >= MAX_LOG_BYTES) return;
    if (call.logBytes + text.length > MAX_LOG_BYTES) text = text.slice(0, MAX_LOG_BYTES - call.logBytes) + '\n[lamina: log truncated]\n';
    call.logBytes += text.length;
  }
  host.log(id, text);
}

const report = (err: unknown) => write(`Uncaught ${format([err])}\n`);
const timers = makeTimers(host, report);

const globals: Record<string, unknown> = {
  console: makeConsole(write),
  ...timers.globals,
  TextEncoder: TextEncoderPolyfill,
  TextDecoder: TextDecoderPolyfill,
  URL: makeURL({ parse: host.url, set: host.urlset }),
  URLSearchParams: URLSearchParamsPolyfill,
  atob,
  btoa,
  structuredClone,
  DOMException: DOMExceptionPolyfill,
  Headers: HeadersPolyfill,
  Request: RequestPolyfill,
  Response: ResponsePolyfill,
  crypto: makeCrypto(host.random),
  performance: { timeOrigin: Date.now(), now: () => Date.now() - (globals.performance as { timeOrigin: number }).timeOrigin },
};
if (host.fetch) Object.assign(globals, { fetch: makeFetch(host.fetch) });
for (const [name, value] of Object.entries(globals)) Object.defineProperty(g, name, { value, writable: true, configurable: true, enumerable: false });

const NODE_GLOBALS = /^(process|require|Buffer|module|exports|__dirname|__filename|global|setImmediate) is not defined$/;

function errorInfo(err: unknown): { name: string; message: string; stack?: string } {
  if (err instanceof InvalidResponse) return { name: 'InvalidResponse', message: err.message };
  if (err instanceof Error) {
    let message = err.message || err.name;
    if (err instanceof ReferenceError && NODE_GLOBALS.test(err.message)) {
      message += ' (isolates have no Node globals; use "sandbox": "process" or "container" for Node APIs)';
    }
    return { name: err.name, message, stack: err.stack };
  }
  let message: string;
  try {
    message = typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
  } catch {
    message = String(err);
  }
  return { name: 'Error', message };
}

type FetchTarget = { fetch: (request: unknown, env: unknown, ctx: unknown) => unknown };

let handler: Handler | undefined;
let fetchTarget: FetchTarget | undefined;
let env: Readonly<Record<string, string>> = Object.freeze({});
/** waitUntil work per call still running after its answer. */
const lingering = new Map<string, Promise<unknown>[]>();

/** After the function's code ran: find its handler (the compile step put it on `__laminaUser.default`, a fetch handler on `__laminaFetch`). Returns the module's kind. */
function boot(envJson: string): 'fetch' | 'handler' {
  const mod = take<{ default?: unknown; __laminaFetch?: unknown } | undefined>('__laminaUser');
  env = Object.freeze(JSON.parse(envJson) as Record<string, string>);
  const f = mod?.__laminaFetch as FetchTarget | undefined;
  if (f && typeof f.fetch === 'function') {
    fetchTarget = f;
    return 'fetch';
  }
  if (typeof mod?.default !== 'function') throw new Error('the function bundle exports no handler (was it compiled for the isolate tier?)');
  handler = mod.default as Handler;
  return 'handler';
}

/** A fetch handler's call: the answer object, with ctx.waitUntil work left in `lingering`. */
async function serveFetch(id: string, eventJson: string, url: string): Promise<string> {
  const work: Promise<unknown>[] = [];
  const ctx = {
    waitUntil(p: unknown) {
      // Background failures are logged; they never change the answer already given.
      work.push(Promise.resolve(p).catch((err: unknown) => write(`waitUntil: ${format([err])}\n`)));
    },
    passThroughOnException() {
      /* the error model answers */
    },
  };
  let out: string;
  try {
    const res = await fetchTarget!.fetch(requestOf(url, JSON.parse(eventJson) as never), env, ctx);
    out = 'o' + JSON.stringify(await answerOf(res, MAX_RESULT_BYTES));
  } catch (err) {
    out = 'e' + JSON.stringify(errorInfo(err));
  }
  if (work.length === 0) return out;
  lingering.set(id, work);
  return out[0]!.toUpperCase() + out.slice(1);
}

/** Resolves when a call's waitUntil work (and work it added meanwhile) is done; ends the call. */
async function settle(id: string): Promise<void> {
  const work = lingering.get(id) ?? [];
  try {
    for (let done = 0; done < work.length; done = work.length) await Promise.all(work.slice(done));
  } finally {
    lingering.delete(id);
    calls.delete(id);
  }
}

interface Ctx {
  requestId: string;
  functionName: string;
  functionVersion: number;
  memoryLimitMb: number;
  deadlineMs: number;
  coldStart: boolean;
}

/** Lambda's names for this function, made again only when it or the UTC day (in logStreamName) changes. */
let names: ReturnType<typeof lambdaContextNames> | undefined;
let namesOf: Ctx | undefined;
let namesUntil = 0;
function namesFor(c: Ctx): ReturnType<typeof lambdaContextNames> {
  const now = Date.now();
  const o = namesOf;
  if (!names || !o || now >= namesUntil || o.functionName !== c.functionName || o.functionVersion !== c.functionVersion || o.memoryLimitMb !== c.memoryLimitMb) {
    names = lambdaContextNames(c, env?.AWS_REGION, new Date(now));
    namesOf = c;
    namesUntil = (Math.floor(now / 86_400_000) + 1) * 86_400_000;
  }
  return names;
}

/**
 * One call: 'o' + the result's JSON, or 'e' + the error's JSON; 'O' or 'E'
 * when waitUntil work goes on, the host then calls `__laminaSettle(id)`.
 */
function invoke(id: string, eventJson: string, c: Ctx, url?: string): Promise<string> {
  calls.set(id, { deadlineMs: c.deadlineMs, logBytes: 0 });
  enter(id);
  if (fetchTarget) {
    return serveFetch(id, eventJson, url ?? 'http://localhost/').then((out) => {
      if (out[0] === 'o' || out[0] === 'e') calls.delete(id);
      return out;
    });
  }
  const n = namesFor(c);
  // One literal, not spreads: spreading objects (the context, Lambda's names) into a new one cost
  // most of a call's time in the isolate (~10 of 14 us a call). Same keys in the same order as before.
  const context = {
    requestId: c.requestId,
    functionName: c.functionName,
    functionVersion: c.functionVersion,
    memoryLimitMb: c.memoryLimitMb,
    coldStart: c.coldStart,
    deadlineMs: c.deadlineMs,
    awsRequestId: c.requestId,
    invokedFunctionArn: n.invokedFunctionArn,
    memoryLimitInMB: n.memoryLimitInMB,
    logGroupName: n.logGroupName,
    logStreamName: n.logStreamName,
    callbackWaitsForEmptyEventLoop: n.callbackWaitsForEmptyEventLoop,
    env,
    getRemainingTimeInMillis: () => Math.max(0, c.deadlineMs - Date.now()),
  };
  const run = async (): Promise<string> => {
    try {
      const value = await handler!(JSON.parse(eventJson), context);
      let json: string | undefined;
      try {
        json = JSON.stringify(value === undefined ? null : value);
      } catch (err) {
        throw new TypeError(`the handler's return value is not JSON-serializable: ${(err as Error).message}`);
      }
      if (json !== undefined && json.length > MAX_RESULT_BYTES) throw new RangeError(`the handler's return value is ${json.length} bytes; the cap is ${MAX_RESULT_BYTES}`);
      return 'o' + (json ?? 'null');
    } catch (err) {
      return 'e' + JSON.stringify(errorInfo(err));
    } finally {
      calls.delete(id);
    }
  };
  return run();
}

/** A batch of calls started together; its promise is the host's answer for it. */
interface Batch {
  left: number;
  resolve: (answers: string[]) => void;
}
/** Answers not yet handed to the host: id, out, id, out, ... */
let outbox: string[] = [];
/** Batches whose promise has not resolved yet. */
let open: Batch[] = [];
let flushQueued = false;
/** Microtask hops a flush waits, so calls started together that end a hop or two apart go in one answer. */
const FLUSH_HOPS = 3;

/** Values per call in a batch: id, event JSON, the context's six fields (requestId, functionName, functionVersion, memoryLimitMb, coldStart, deadlineMs), url. */
const CALL_FIELDS = 9;

/**
 * Starts the calls of one batch (CALL_FIELDS plain values per call: no objects to copy) and
 * resolves, once all of them have answered, with the answers of the flush that
 * ended the last one. Answers that are ready while the batch still waits for other
 * calls go to the host through `host.done`: either way, one crossing back to the host
 * per flush, not per call.
 */
function invokeBatch(flat: unknown[]): Promise<string[]> {
  return new Promise<string[]>((resolve) => {
    const batch: Batch = { left: Math.floor(flat.length / CALL_FIELDS), resolve };
    open.push(batch);
    for (let i = 0; i + CALL_FIELDS <= flat.length; i += CALL_FIELDS) {
      const id = flat[i] as string;
      const c: Ctx = { requestId: flat[i + 2] as string, functionName: flat[i + 3] as string, functionVersion: flat[i + 4] as number, memoryLimitMb: flat[i + 5] as number, coldStart: flat[i + 6] as boolean, deadlineMs: flat[i + 7] as number };
      // invoke never rejects: the handler's errors are answers ('e' + JSON).
      void invoke(id, flat[i + 1] as string, c, flat[i + 8] as string | undefined).then((out) => {
        // Not push(): user code may replace Array.prototype.push. What it can still tamper with, the host checks.
        outbox[outbox.length] = id;
        outbox[outbox.length] = out;
        batch.left--;
        queueFlush();
      });
    }
    if (batch.left <= 0) queueFlush();
  });
}

function queueFlush(): void {
  if (flushQueued) return;
  flushQueued = true;
  let p = Promise.resolve();
  for (let i = 1; i < FLUSH_HOPS; i++) p = p.then(() => undefined);
  void p.then(flush);
}

function flush(): void {
  flushQueued = false;
  const answers = outbox;
  outbox = [];
  const ended = open.filter((b) => b.left <= 0);
  if (ended.length > 0) open = open.filter((b) => b.left > 0);
  // The answers ride on an ended batch's promise when there is one (no extra crossing), else go on their own.
  if (ended.length === 0) {
    if (answers.length > 0) host.done(answers);
    return;
  }
  ended[0]!.resolve(answers);
  for (let i = 1; i < ended.length; i++) ended[i]!.resolve([]);
}

Object.assign(g, { __laminaBoot: boot, __laminaInvokeBatch: invokeBatch, __laminaFire: timers.fire, __laminaSettle: settle });
