// Request and Response for the isolate (fetch handlers, Workers style): bodies
// are bytes, so text, JSON and binary all pass intact. Plus the two
// conversions the isolate's fetch handler calls need: the function-URL event
// into a Request, and a Response into the wire's response object.
import { base64ToBytes, bytesToBase64 } from './base64.js';
import { HeadersPolyfill } from './fetch.js';
import { TextDecoderPolyfill, TextEncoderPolyfill, bytesOf } from './text.js';
import { URLSearchParamsPolyfill } from './url.js';

const encoder = new TextEncoderPolyfill();

/** Bytes of a body init, and the content type it implies. */
function bodyInit(body: unknown): { bytes: Uint8Array | null; type: string | null } {
  if (body === undefined || body === null) return { bytes: null, type: null };
  if (body instanceof Uint8Array) return { bytes: body.slice(), type: null };
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return { bytes: bytesOf(body).slice(), type: null };
  if (body instanceof URLSearchParamsPolyfill) return { bytes: encoder.encode(body.toString()), type: 'application/x-www-form-urlencoded;charset=UTF-8' };
  if (body instanceof BodyPolyfill) return { bytes: body.peek(), type: body.headers.get('content-type') };
  return { bytes: encoder.encode(String(body)), type: 'text/plain;charset=UTF-8' };
}

abstract class BodyPolyfill {
  abstract readonly headers: HeadersPolyfill;
  #bytes: Uint8Array | null;
  #used = false;
  constructor(bytes: Uint8Array | null) {
    this.#bytes = bytes;
  }
  get bodyUsed(): boolean {
    return this.#used;
  }
  /** The body without consuming it (clone, re-wrapping). */
  peek(): Uint8Array | null {
    return this.#bytes;
  }
  #take(): Uint8Array {
    if (this.#used) throw new TypeError('Body is unusable: Body has already been read');
    this.#used = true;
    return this.#bytes ?? new Uint8Array(0);
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = this.#take();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }
  async bytes(): Promise<Uint8Array> {
    return this.#take().slice();
  }
  async text(): Promise<string> {
    return new TextDecoderPolyfill().decode(this.#take());
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }
  /** Form bodies (urlencoded) as URLSearchParams; multipart is not parsed in isolates. */
  async formData(): Promise<URLSearchParamsPolyfill> {
    const type = this.headers.get('content-type') ?? '';
    if (!/^application\/x-www-form-urlencoded/i.test(type)) throw new TypeError('formData(): isolates parse application/x-www-form-urlencoded bodies only');
    return new URLSearchParamsPolyfill(await this.text());
  }
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

interface RequestInitLike {
  method?: string;
  headers?: unknown;
  body?: unknown;
}

export class RequestPolyfill extends BodyPolyfill {
  readonly url: string;
  readonly method: string;
  readonly headers: HeadersPolyfill;
  readonly signal = undefined;
  constructor(input: unknown, init: RequestInitLike = {}) {
    const from = input instanceof RequestPolyfill ? input : undefined;
    const method = String(init.method ?? from?.method ?? 'GET').toUpperCase();
    const { bytes, type } = init.body !== undefined ? bodyInit(init.body) : { bytes: from?.peek() ?? null, type: null };
    if (bytes && (method === 'GET' || method === 'HEAD')) throw new TypeError('Request with GET/HEAD method cannot have body.');
    super(bytes);
    this.url = from ? from.url : String(input);
    this.method = METHODS.has(method) ? method : String(init.method ?? 'GET');
    this.headers = new HeadersPolyfill(init.headers ?? from?.headers);
    if (type && !this.headers.has('content-type')) this.headers.set('content-type', type);
  }
  clone(): RequestPolyfill {
    if (this.bodyUsed) throw new TypeError('Request.clone: Body has already been consumed.');
    return new RequestPolyfill(this);
  }
}

interface ResponseInitLike {
  status?: number;
  statusText?: string;
  headers?: unknown;
}

export class ResponsePolyfill extends BodyPolyfill {
  readonly status: number;
  readonly statusText: string;
  readonly headers: HeadersPolyfill;
  readonly type = 'default';
  readonly redirected = false;
  readonly url = '';
  constructor(body?: unknown, init: ResponseInitLike = {}) {
    const status = init.status ?? 200;
    if (!Number.isInteger(status) || status < 200 || status > 599) throw new RangeError(`Response: status must be an integer from 200 to 599 (got ${String(status)})`);
    const { bytes, type } = bodyInit(body);
    super(bytes);
    this.status = status;
    this.statusText = String(init.statusText ?? '');
    this.headers = new HeadersPolyfill(init.headers);
    if (type && !this.headers.has('content-type')) this.headers.set('content-type', type);
  }
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }
  clone(): ResponsePolyfill {
    if (this.bodyUsed) throw new TypeError('Response.clone: Body has already been consumed.');
    return new ResponsePolyfill(this.peek(), { status: this.status, statusText: this.statusText, headers: this.headers });
  }
  static json(data: unknown, init: ResponseInitLike = {}): ResponsePolyfill {
    const headers = new HeadersPolyfill(init.headers);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    return new ResponsePolyfill(JSON.stringify(data), { ...init, headers });
  }
  static redirect(url: unknown, status = 302): ResponsePolyfill {
    if (![301, 302, 303, 307, 308].includes(status)) throw new RangeError(`Response.redirect: invalid status ${status}`);
    return new ResponsePolyfill(null, { status, headers: { location: String(url) } });
  }
  static error(): ResponsePolyfill {
    throw new TypeError('Response.error() is not supported in a function');
  }
}

/** The fetch-mode event (docs/runtime-protocol.md); a function-URL 2.0 event is read as well (its method in requestContext). */
interface UrlEvent {
  method?: string;
  headers?: Record<string, string>;
  requestContext?: { http?: { method?: string } };
  body?: string;
  isBase64Encoded?: boolean;
}

export function requestOf(url: string, ev: UrlEvent): RequestPolyfill {
  const method = ev.method ?? ev.requestContext?.http?.method ?? 'GET';
  const hasBody = ev.body !== undefined && method !== 'GET' && method !== 'HEAD';
  const body = hasBody ? (ev.isBase64Encoded ? base64ToBytes(ev.body!) : ev.body) : undefined;
  const req = new RequestPolyfill(url, { method, headers: ev.headers ?? {}, ...(hasBody ? { body } : {}) });
  return req;
}

const TEXT_TYPES = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|graphql|x-ndjson)\b|application\/[^;]*\+(json|xml)\b|image\/svg\+xml\b)/i;

export class InvalidResponse extends Error {
  override name = 'InvalidResponse';
}

/** A Response as the wire's response object (same rule for text vs base64 as the worker's). */
export async function answerOf(res: unknown, maxBodyBytes: number): Promise<object> {
  if (!(res instanceof ResponsePolyfill)) {
    const got = res === undefined ? 'undefined' : res === null ? 'null' : typeof res === 'object' ? `an object (${(res as object).constructor?.name ?? 'Object'})` : `a ${typeof res}`;
    throw new InvalidResponse(`the fetch handler must return a Response (got ${got})`);
  }
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (k !== 'set-cookie') headers[k] = v;
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length > maxBodyBytes) throw new RangeError(`the response body is ${bytes.length} bytes; the cap is ${maxBodyBytes}`);
  let text: string | undefined;
  const type = headers['content-type'];
  if (!type || TEXT_TYPES.test(type)) {
    try {
      text = new TextDecoderPolyfill('utf-8', { fatal: true }).decode(bytes);
    } catch {
      text = undefined;
    }
  }
  return { statusCode: res.status, headers, cookies: res.headers.getSetCookie(), body: text ?? bytesToBase64(bytes), isBase64Encoded: text === undefined };
}
