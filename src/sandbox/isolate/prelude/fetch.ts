// fetch for functions with network: true. The host makes the request (its own
// fetch, bounded by the call's deadline and a body cap); the isolate gets a
// small Response: status, ok, statusText, url, redirected, headers, text(),
// json(), arrayBuffer().
import { base64ToBytes, bytesToBase64 } from './base64.js';
import { calls, currentCall, enter } from './calls.js';
import { TextDecoderPolyfill, TextEncoderPolyfill, bytesOf } from './text.js';
import { URLSearchParamsPolyfill } from './url.js';

/** The host's fetch as the isolate sees it: an isolated-vm Reference. */
export interface FetchRef {
  apply(receiver: undefined, args: [string], options: { result: { promise: true; copy: true } }): Promise<string>;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export class HeadersPolyfill {
  private map = new Map<string, [string, string]>();
  /** Set-Cookie values stay apart: joining them with ", " would corrupt cookies holding dates. */
  private cookies: string[] = [];
  constructor(init?: unknown) {
    if (init instanceof HeadersPolyfill) {
      init.forEach((v, k) => k !== 'set-cookie' && this.append(k, v));
      for (const c of init.getSetCookie()) this.append('set-cookie', c);
    } else if (Array.isArray(init)) for (const [k, v] of init as [unknown, unknown][]) this.append(k, v);
    else if (init && typeof init === 'object') for (const k of Object.keys(init)) this.append(k, (init as Record<string, unknown>)[k]);
  }
  private static key(name: unknown): string {
    const key = String(name).toLowerCase();
    if (!HEADER_NAME.test(key)) throw new TypeError(`Headers: invalid header name ${JSON.stringify(String(name))}`);
    return key;
  }
  private static value(value: unknown): string {
    const v = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '');
    if (/[\r\n\0]/.test(v)) throw new TypeError('Headers: invalid header value');
    return v;
  }
  append(name: unknown, value: unknown): void {
    const key = HeadersPolyfill.key(name);
    const v = HeadersPolyfill.value(value);
    if (key === 'set-cookie') return void this.cookies.push(v);
    const prev = this.map.get(key);
    this.map.set(key, [key, prev ? `${prev[1]}, ${v}` : v]);
  }
  set(name: unknown, value: unknown): void {
    const key = HeadersPolyfill.key(name);
    const v = HeadersPolyfill.value(value);
    if (key === 'set-cookie') this.cookies = [v];
    else this.map.set(key, [key, v]);
  }
  get(name: unknown): string | null {
    const key = String(name).toLowerCase();
    if (key === 'set-cookie') return this.cookies.length ? this.cookies.join(', ') : null;
    return this.map.get(key)?.[1] ?? null;
  }
  getSetCookie(): string[] {
    return [...this.cookies];
  }
  has(name: unknown): boolean {
    const key = String(name).toLowerCase();
    return key === 'set-cookie' ? this.cookies.length > 0 : this.map.has(key);
  }
  delete(name: unknown): void {
    const key = String(name).toLowerCase();
    if (key === 'set-cookie') this.cookies = [];
    this.map.delete(key);
  }
  forEach(cb: (value: string, name: string, headers: this) => void): void {
    for (const [k, v] of this.entries()) cb(v, k, this);
  }
  entries(): IterableIterator<[string, string]> {
    const all: [string, string][] = [...this.map.values(), ...this.cookies.map((c): [string, string] => ['set-cookie', c])];
    return all.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))[Symbol.iterator]();
  }
  keys(): IterableIterator<string> {
    return [...this.entries()].map(([k]) => k)[Symbol.iterator]();
  }
  values(): IterableIterator<string> {
    return [...this.entries()].map(([, v]) => v)[Symbol.iterator]();
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

interface HostResponse {
  status: number;
  statusText: string;
  url: string;
  redirected: boolean;
  headers: [string, string][];
  body: string;
}

class ResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly url: string;
  readonly redirected: boolean;
  readonly headers: HeadersPolyfill;
  #body: Uint8Array | undefined;

  constructor(r: HostResponse) {
    this.status = r.status;
    this.ok = r.status >= 200 && r.status < 300;
    this.statusText = r.statusText;
    this.url = r.url;
    this.redirected = r.redirected;
    this.headers = new HeadersPolyfill(r.headers);
    this.#body = base64ToBytes(r.body);
  }
  get bodyUsed(): boolean {
    return this.#body === undefined;
  }
  #take(): Uint8Array {
    const b = this.#body;
    if (!b) throw new TypeError('Body is unusable: Body has already been read');
    this.#body = undefined;
    return b;
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = this.#take();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }
  async text(): Promise<string> {
    return new TextDecoderPolyfill().decode(this.#take());
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }
}

function bodyOf(body: unknown, headers: HeadersPolyfill): string | null {
  if (body === undefined || body === null) return null;
  if (body instanceof URLSearchParamsPolyfill) {
    if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
    return bytesToBase64(new TextEncoderPolyfill().encode(body.toString()));
  }
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return bytesToBase64(bytesOf(body));
  if (!headers.has('content-type')) headers.set('content-type', 'text/plain;charset=UTF-8');
  return bytesToBase64(new TextEncoderPolyfill().encode(String(body)));
}

export function makeFetch(ref: FetchRef) {
  return async function fetch(input: unknown, init: { method?: string; headers?: unknown; body?: unknown } = {}): Promise<ResponseLike> {
    const call = currentCall();
    const url = typeof input === 'object' && input !== null && 'url' in input ? String((input as { url: unknown }).url) : String(input);
    const headers = new HeadersPolyfill(init.headers);
    const request = {
      url,
      method: String(init.method ?? 'GET').toUpperCase(),
      body: bodyOf(init.body, headers),
      headers: [...headers],
      deadlineMs: call ? calls.get(call)!.deadlineMs : Date.now() + 30_000,
    };
    let reply: HostResponse | { error: string };
    try {
      reply = JSON.parse(await ref.apply(undefined, [JSON.stringify(request)], { result: { promise: true, copy: true } })) as HostResponse | { error: string };
    } catch (err) {
      reply = { error: (err as Error)?.message ?? String(err) };
    }
    enter(call); // this settling continues the call that made the request
    if ('error' in reply) throw new TypeError(`fetch failed: ${reply.error}`);
    return new ResponseLike(reply);
  };
}
