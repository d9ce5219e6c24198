// Fetch handlers in the Node runtime (Cloudflare Workers style): a module that
// exports `fetch` (or whose default export has a `fetch` method) gets a WHATWG
// Request built from the function-URL event and answers a Response, which is
// converted into the wire protocol's response object (docs/runtime-protocol.md).
// Bundled into the runtime: imports only node:* and the shared body rule.
import { isTextBody } from '../../http/event.js';

export interface FetchTarget {
  fetch: (request: Request, env: Record<string, string>, ctx: FetchContext) => unknown;
}

export interface FetchContext {
  waitUntil(work: unknown): void;
  passThroughOnException(): void;
}

interface UrlEvent {
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

export function requestOf(url: string, ev: UrlEvent): Request {
  const method = ev.requestContext?.http?.method ?? 'GET';
  const headers = new Headers();
  for (const [k, v] of Object.entries(ev.headers ?? {})) {
    try {
      headers.append(k, v);
    } catch {
      /* a header undici refuses (forbidden names are not, values were parsed by the HTTP server) */
    }
  }
  const hasBody = ev.body !== undefined && method !== 'GET' && method !== 'HEAD';
  const body = hasBody ? (ev.isBase64Encoded ? Buffer.from(ev.body!, 'base64') : ev.body) : undefined;
  return new Request(url, { method, headers, body, ...(hasBody ? { duplex: 'half' } : {}) } as RequestInit);
}

/** The Response as the wire's response object; every Set-Cookie kept apart. */
export async function answerOf(res: unknown, maxBodyBytes: number): Promise<object> {
  if (!(res instanceof Response)) {
    const got = res === undefined ? 'undefined' : res === null ? 'null' : typeof res === 'object' ? `an object (${(res as object).constructor?.name ?? 'Object'})` : `a ${typeof res}`;
    throw new InvalidResponseError(`the fetch handler must return a Response (got ${got})`);
  }
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (k !== 'set-cookie') headers[k] = v;
  });
  const cookies = res.headers.getSetCookie();
  const bytes = Buffer.from(await res.arrayBuffer());
  if (bytes.length > maxBodyBytes) throw new RangeError(`the response body is ${bytes.length} bytes; the cap is ${maxBodyBytes}`);
  const text = isTextBody(headers['content-type'], bytes);
  return { statusCode: res.status, headers, cookies, body: text ? bytes.toString('utf8') : bytes.toString('base64'), isBase64Encoded: !text };
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
