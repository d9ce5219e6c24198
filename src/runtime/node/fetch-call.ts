// Fetch handlers in the Node runtime (Cloudflare Workers style): a module that
// exports `fetch` (or whose default export has a `fetch` method) gets a WHATWG
// Request built from the function-URL event and answers a Response, which is
// converted into the wire protocol's response object (docs/runtime-protocol.md).
// Bundled into the runtime: imports only node:* and the shared body rule.
import { isTextBody, isTextType } from '../../http/event.js';
import { takeKeptBody, takeQuickParts, wellFormed } from './quick-response.js';

export interface FetchTarget {
  fetch: (request: Request, env: Record<string, string>, ctx: FetchContext) => unknown;
}

export interface FetchContext {
  waitUntil(work: unknown): void;
  passThroughOnException(): void;
}

/** The fetch-mode event (docs/runtime-protocol.md); a function-URL 2.0 event is read as well (its method in requestContext). */
interface UrlEvent {
  method?: string;
  headers?: Record<string, string>;
  requestContext?: { http?: { method?: string } };
  body?: string;
  isBase64Encoded?: boolean;
}

export class InvalidResponseError extends Error {
  override name = 'InvalidResponse';
}

/** The module's fetch handler, if it is one (our bundle wrapper names it; plain modules are looked at directly). */
export function findFetch(mod: Record<string, unknown>): FetchTarget | undefined {
  const has = (x: unknown): x is FetchTarget => x !== null && (typeof x === 'object' || typeof x === 'function') && typeof (x as { fetch?: unknown }).fetch === 'function';
  if (has(mod.__laminaFetch)) return mod.__laminaFetch;
  if (typeof mod.fetch === 'function') return mod as unknown as FetchTarget;
  if (has(mod.default)) return mod.default;
  return undefined;
}

/** A genuine undici Request for the event (what `requestOf` hands out once the handler needs one). */
function buildRequest(url: string, method: string, ev: UrlEvent, body: Buffer | string | undefined): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(ev.headers ?? {})) {
    try {
      headers.append(k, v);
    } catch {
      /* a header undici refuses (forbidden names are not, values were parsed by the HTTP server) */
    }
  }
  return new Request(url, { method, headers, body, ...(body !== undefined ? { duplex: 'half' } : {}) } as RequestInit);
}

let requestProto: Request | undefined;

/** Reading the body the common way (text, json, arrayBuffer) needs no Request: these answer from the event. */
const QUICK = new Set<PropertyKey>(['method', 'bodyUsed', 'text', 'json', 'arrayBuffer']);

/** One handler's Request: what the quick reads answer from, and the real Request once built. */
interface RequestState {
  url: string;
  method: string;
  ev: UrlEvent;
  body: Buffer | string | undefined;
  real: Request | undefined;
  used: boolean;
  /** The quick read methods handed out (made on first use: a handler reads its body one way). */
  fns: Record<string, unknown> | undefined;
}

/** The proxy's target holds its state under this key (never seen: every trap but get's quick reads goes to the real Request). */
const STATE = Symbol('lamina.requestState');
const stateOf = (target: object): RequestState => (target as { [STATE]: RequestState })[STATE];

function materialize(st: RequestState): Request {
  if (st.real) return st.real;
  st.real = buildRequest(st.url, st.method, st.ev, st.body);
  // Read on the quick path: the real one says so too (cancelling marks its stream disturbed).
  if (st.used) void st.real.body?.cancel().catch(() => undefined);
  return st.real;
}

function take(st: RequestState): Buffer | string {
  if (st.used) throw new TypeError('Body is unusable: Body has already been read');
  if (st.body === undefined) return '';
  st.used = true;
  return st.body;
}

// UTF-8 decode as the Fetch standard does: invalid bytes (lone surrogates) become U+FFFD, a leading BOM is dropped.
// A text body is already a string here: no bytes in between.
function textOf(st: RequestState): string {
  const b = take(st);
  const s = typeof b === 'string' ? wellFormed(b) : b.toString('utf8');
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
}

function quickFn(st: RequestState, name: string): unknown {
  if (name === 'text') return async () => textOf(st);
  if (name === 'json') return async () => JSON.parse(textOf(st)) as unknown;
  return async () => {
    const b = take(st);
    const bytes = typeof b === 'string' ? Buffer.from(b) : b;
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  };
}

/** Shared by every request proxy: the state is on the target, so a call allocates no traps. */
const requestTraps: ProxyHandler<object> = {
  get(target, prop) {
    const st = stateOf(target);
    if (!st.real && QUICK.has(prop)) {
      if (prop === 'method') return st.method;
      if (prop === 'bodyUsed') return st.used;
      const fns = (st.fns ??= {});
      return (fns[prop as string] ??= quickFn(st, prop as string));
    }
    const r = materialize(st);
    const v: unknown = Reflect.get(r, prop, r);
    // undici's methods check their receiver: call them on the real Request.
    return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(r) : v;
  },
  has: (target, prop) => Reflect.has(materialize(stateOf(target)), prop),
  set: (target, prop, value) => Reflect.set(materialize(stateOf(target)), prop, value),
  ownKeys: (target) => Reflect.ownKeys(materialize(stateOf(target))),
  getOwnPropertyDescriptor: (target, prop) => {
    const d = Reflect.getOwnPropertyDescriptor(materialize(stateOf(target)), prop);
    // A proxy may only report a non-configurable property its target has: report it configurable.
    return d ? { ...d, configurable: true } : undefined;
  },
  // The target's own state key is not the Request's: nothing may define or delete on it but through the real one.
  defineProperty: (target, prop, d) => Reflect.defineProperty(materialize(stateOf(target)), prop, d),
  deleteProperty: (target, prop) => Reflect.deleteProperty(materialize(stateOf(target)), prop),
};

/**
 * The handler's Request. Building an undici Request (Headers, an AbortSignal, a
 * body stream) and reading its body back cost tens of microseconds, many times a
 * JSON-mode call's whole runtime work (docs/benchmarks.md, "HTTP functions"). So the
 * handler gets a proxy of Request.prototype (`instanceof Request` holds) that
 * answers `method`, `bodyUsed` and one read of the body (`text`, `json`,
 * `arrayBuffer`) from the event itself, and builds the real Request the first time
 * anything else is touched (headers, url, body, clone, signal, `fetch(request)`...),
 * delegating to it from then on; a body already read is then marked used there too.
 * The traps are shared and the state lives on the proxy's target: a proxy with its
 * own closures cost ~3.5 KB of allocation per call.
 */
export function requestOf(url: string, ev: UrlEvent): Request {
  const method = ev.method ?? ev.requestContext?.http?.method ?? 'GET';
  const hasBody = ev.body !== undefined && method !== 'GET' && method !== 'HEAD';
  const body = hasBody ? (ev.isBase64Encoded ? Buffer.from(ev.body!, 'base64') : ev.body) : undefined;
  // Node's global Request is an accessor (undici loads lazily): read it once, on the first fetch call.
  requestProto ??= Request.prototype;
  const target = Object.create(requestProto) as { [STATE]: RequestState };
  target[STATE] = { url, method, ev, body, real: undefined, used: false, fns: undefined };
  return new Proxy(target, requestTraps) as Request;
}

/** The Response as the wire's response object; every Set-Cookie kept apart. */
export async function answerOf(res: unknown, maxBodyBytes: number): Promise<object> {
  return answer(res, maxBodyBytes);
}

/**
 * answerOf without a promise when the body is in memory (the common case): with
 * async hooks on (the runtime's AsyncLocalStorage) every promise and await costs,
 * and most when calls are far apart. Throws at once for what is not a Response.
 */
export function answer(res: unknown, maxBodyBytes: number): object | Promise<object> {
  if (!(res instanceof Response)) {
    const got = res === undefined ? 'undefined' : res === null ? 'null' : typeof res === 'object' ? `an object (${(res as object).constructor?.name ?? 'Object'})` : `a ${typeof res}`;
    throw new InvalidResponseError(`the fetch handler must return a Response (got ${got})`);
  }
  // A bare quick Response answers from its own fields (no Headers object built); any other is read as a Response.
  const parts = takeQuickParts(res);
  let headers: Record<string, string>;
  let cookies: string[];
  let kept: ReturnType<typeof takeKeptBody>;
  if (parts) {
    ({ headers, cookies, body: kept } = parts);
  } else {
    headers = {};
    res.headers.forEach((v, k) => {
      if (k !== 'set-cookie') headers[k] = v;
    });
    cookies = res.headers.getSetCookie();
    kept = takeKeptBody(res);
  }
  const type = headers['content-type'];
  // A string body of a textual type goes out as given: no bytes, no stream (same answer as reading its UTF-8).
  if (typeof kept === 'string' && isTextType(type)) {
    const bytes = kept.length * 3 > maxBodyBytes ? Buffer.byteLength(kept) : 0;
    if (bytes > maxBodyBytes) throw new RangeError(`the response body is ${bytes} bytes; the cap is ${maxBodyBytes}`);
    return { statusCode: parts?.status ?? res.status, headers, cookies, body: wellFormed(kept), isBase64Encoded: false };
  }
  const status = parts?.status ?? res.status;
  if (kept === undefined) return res.arrayBuffer().then((b) => bytesAnswer(status, headers, cookies, Buffer.from(b), maxBodyBytes));
  const bytes = kept === null ? Buffer.alloc(0) : typeof kept === 'string' ? Buffer.from(kept) : Buffer.from(kept.buffer, kept.byteOffset, kept.byteLength);
  return bytesAnswer(status, headers, cookies, bytes, maxBodyBytes);
}

/** A body as bytes on the wire: text when textual and valid UTF-8, else base64. */
function bytesAnswer(statusCode: number, headers: Record<string, string>, cookies: string[], bytes: Buffer, maxBodyBytes: number): object {
  if (bytes.length > maxBodyBytes) throw new RangeError(`the response body is ${bytes.length} bytes; the cap is ${maxBodyBytes}`);
  const text = isTextBody(headers['content-type'], bytes);
  return { statusCode, headers, cookies, body: text ? bytes.toString('utf8') : bytes.toString('base64'), isBase64Encoded: !text };
}

/**
 * A fetch call's ctx, whose waitUntil work the runtime awaits (inside the deadline)
 * before the call ends. A class, its methods on the prototype, so a call that hands
 * over no work allocates one small object (as on Workers, the methods are called on ctx).
 */
export class CallContext implements FetchContext {
  #work: Promise<unknown>[] | undefined;

  waitUntil(p: unknown): void {
    // A failure in background work is logged, never turned into the response's failure.
    (this.#work ??= []).push(Promise.resolve(p).catch((err: unknown) => console.error('waitUntil:', err)));
  }

  passThroughOnException(): void {
    /* nothing to pass through to: the error model answers */
  }

  /** Whether work was handed over. */
  pending(): boolean {
    return this.#work !== undefined;
  }

  /** Work may hand more work to waitUntil while it runs: settle until none is left. */
  async settle(): Promise<void> {
    const work = this.#work ?? [];
    for (let done = 0; done < work.length; done = work.length) await Promise.all(work.slice(done));
  }
}
