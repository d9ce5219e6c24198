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

/**
 * The handler's Request. Building an undici Request (Headers, an AbortSignal, a
 * body stream) and reading its body back cost tens of microseconds, many times a
 * JSON-mode call's whole runtime work (docs/benchmarks.md, "HTTP functions"). So the
 * handler gets a proxy of Request.prototype (`instanceof Request` holds) that
 * answers `method`, `bodyUsed` and one read of the body (`text`, `json`,
 * `arrayBuffer`) from the event itself, and builds the real Request the first time
 * anything else is touched (headers, url, body, clone, signal, `fetch(request)`...),
 * delegating to it from then on; a body already read is then marked used there too.
 */
export function requestOf(url: string, ev: UrlEvent): Request {
  const method = ev.method ?? ev.requestContext?.http?.method ?? 'GET';
  const hasBody = ev.body !== undefined && method !== 'GET' && method !== 'HEAD';
  const body = hasBody ? (ev.isBase64Encoded ? Buffer.from(ev.body!, 'base64') : ev.body) : undefined;
  let real: Request | undefined;
  let used = false;
  const materialize = (): Request => {
    if (real) return real;
    real = buildRequest(url, method, ev, body);
    // Read on the quick path: the real one says so too (cancelling marks its stream disturbed).
    if (used) void real.body?.cancel().catch(() => undefined);
    return real;
  };
  const take = (): Buffer | string => {
    if (used) throw new TypeError('Body is unusable: Body has already been read');
    if (body === undefined) return '';
    used = true;
    return body;
  };
  // UTF-8 decode as the Fetch standard does: invalid bytes (lone surrogates) become U+FFFD, a leading BOM is dropped.
  // A text body is already a string here: no bytes in between.
  const text = async (): Promise<string> => {
    const b = take();
    const s = typeof b === 'string' ? wellFormed(b) : b.toString('utf8');
    return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
  };
  const quick: Record<string, unknown> = {
    text,
    json: async () => JSON.parse(await text()) as unknown,
    arrayBuffer: async () => {
      const b = take();
      const bytes = typeof b === 'string' ? Buffer.from(b) : b;
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    },
  };
  // Node's global Request is an accessor (undici loads lazily): read it once, on the first fetch call.
  requestProto ??= Request.prototype;
  return new Proxy(Object.create(requestProto) as Request, {
    get(_target, prop) {
      if (!real && QUICK.has(prop)) {
        if (prop === 'method') return method;
        if (prop === 'bodyUsed') return used;
        return quick[prop as string];
      }
      const r = materialize();
      const v: unknown = Reflect.get(r, prop, r);
      // undici's methods check their receiver: call them on the real Request.
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(r) : v;
    },
    has: (_target, prop) => Reflect.has(materialize(), prop),
    set: (_target, prop, value) => Reflect.set(materialize(), prop, value),
    ownKeys: () => Reflect.ownKeys(materialize()),
    getOwnPropertyDescriptor: (_target, prop) => {
      const d = Reflect.getOwnPropertyDescriptor(materialize(), prop);
      // A proxy may only report a non-configurable property its target has: report it configurable.
      return d ? { ...d, configurable: true } : undefined;
    },
  });
}

/** The Response as the wire's response object; every Set-Cookie kept apart. */
export async function answerOf(res: unknown, maxBodyBytes: number): Promise<object> {
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
  const bytes =
    kept === undefined ? Buffer.from(await res.arrayBuffer()) : kept === null ? Buffer.alloc(0) : typeof kept === 'string' ? Buffer.from(kept) : Buffer.from(kept.buffer, kept.byteOffset, kept.byteLength);
  if (bytes.length > maxBodyBytes) throw new RangeError(`the response body is ${bytes.length} bytes; the cap is ${maxBodyBytes}`);
  const text = isTextBody(type, bytes);
  return { statusCode: parts?.status ?? res.status, headers, cookies, body: text ? bytes.toString('utf8') : bytes.toString('base64'), isBase64Encoded: !text };
}

/** A ctx whose waitUntil work the runtime awaits (inside the deadline) before the call ends. */
export function fetchContext(): { ctx: FetchContext; settle: () => Promise<void>; pending: () => boolean } {
  const work: Promise<unknown>[] = [];
  const ctx: FetchContext = {
    waitUntil(p: unknown) {
      // A failure in background work is logged, never turned into the response's failure.
      work.push(Promise.resolve(p).catch((err: unknown) => console.error('waitUntil:', err)));
    },
    passThroughOnException() {
      /* nothing to pass through to: the error model answers */
    },
  };
  // Work may hand more work to waitUntil while it runs: settle until none is left.
  const settle = async () => {
    for (let done = 0; done < work.length; done = work.length) await Promise.all(work.slice(done));
  };
  return { ctx, settle, pending: () => work.length > 0 };
}
