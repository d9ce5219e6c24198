// The Response class fetch handlers see in the Node runtime: undici's own, unless
// the body is already in memory (a string, an ArrayBuffer, a typed array or
// DataView, or none). undici wraps every body in a WHATWG byte stream at
// construction and reads it back through a reader, several promise turns per
// call; a fetch handler's `new Response(text)` that the runtime then reads cost
// more than all of a JSON-mode call's work (docs/benchmarks.md, "HTTP functions").
// Such a body is kept as given instead, and the real stream is built only if user
// code asks for one (`body`, `blob()`, `formData()`), so the handler still holds a
// genuine WHATWG Response: undici's prototype, status, headers and statics,
// `instanceof Response` true for it and for what `fetch()` returns.
//
// With a plain init (nothing, or an object whose status is an integer, statusText a
// string and headers a plain object of strings, all valid) undici's constructor is
// not run at all: its webidl conversions, Headers and internal state were most of
// what is left of a fetch call's extra cost when calls are far apart (caches cold:
// 32 single-call runtimes on 2 cores). Such a "bare" Response answers every getter
// from its own fields, checks the init as the Fetch standard does, and builds its
// Headers only when user code asks for them; any other init goes through undici.
// Bundled into the runtime: node:* and globals only.

/** A body held in memory: a string, bytes (our own copy), or none. */
type Bytes = Uint8Array<ArrayBuffer>;
type Kept = string | Bytes | null;
/** Header pairs: lower-case name, value as Headers stores it (trimmed). */
type Pairs = [string, string][];

/** Statuses that may not carry a body: undici's constructor words the refusal. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
/** A header name (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A header value Headers accepts as is: bytes only, no NUL, CR or LF, no surrounding HTTP whitespace. */
const PLAIN_VALUE = /^(?:[^\0\r\n\t ]|[^\0\r\n\t ][^\0\r\n]*[^\0\r\n\t ])?$/;
const NOT_BYTE = /[^\x00-\xff]/;
/** A reason phrase (statusText): HTAB, SP, visible ASCII, obs-text. */
const REASON = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The body's bytes, copied as the Fetch standard copies a BufferSource; undefined when not held in memory. */
function keep(body: unknown): Kept | undefined {
  if (body === null || body === undefined) return null;
  if (typeof body === 'string') return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body.slice(0));
  if (ArrayBuffer.isView(body) && body.buffer instanceof ArrayBuffer) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength).slice();
  return undefined;
}

interface PlainInit {
  status: number;
  statusText: string;
  pairs: Pairs;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
};

/**
 * A ResponseInit read without undici, when it is plain and valid; undefined for
 * anything else (then undici's constructor reads it, converting or refusing it
 * with its own errors). So the quick path never has to word an error itself.
 */
function plainInit(init: unknown): PlainInit | undefined {
  if (init === undefined || init === null) return { status: 200, statusText: '', pairs: [] };
  if (!isPlainObject(init)) return undefined;
  const { status = 200, statusText = '', headers } = init;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) return undefined;
  if (typeof statusText !== 'string' || !REASON.test(statusText) || NOT_BYTE.test(statusText)) return undefined;
  const pairs: Pairs = [];
  if (headers !== undefined) {
    if (!isPlainObject(headers) || Object.getOwnPropertySymbols(headers).length > 0) return undefined;
    for (const name in headers) {
      const value = headers[name];
      if (!Object.hasOwn(headers, name) || typeof value !== 'string' || !TOKEN.test(name) || !PLAIN_VALUE.test(value) || NOT_BYTE.test(value)) return undefined;
      pairs.push([name.toLowerCase(), value]);
    }
  }
  return { status, statusText, pairs };
}

/** What the runtime reads of a bare Response (answerOf): status, headers as the wire wants them, and the body. */
export interface QuickParts {
  status: number;
  headers: Record<string, string>;
  cookies: string[];
  body: Kept;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A string as its UTF-8 bytes would decode: lone surrogates become U+FFFD (Node 20+ has toWellFormed). */
export const wellFormed = (s: string): string => (s as string & { toWellFormed(): string }).toWellFormed();

/** The kept body for the runtime's own read (answerOf); undefined when it must read the Response the standard way. */
export let takeKeptBody: (res: Response) => Kept | undefined = () => undefined;
/** Everything answerOf needs of a bare Response whose headers and body are untouched; undefined otherwise. */
export let takeQuickParts: (res: Response) => QuickParts | undefined = () => undefined;

/** undici's Response, however it is reached (Node's global is a lazy accessor that loads undici). */
let nativeResponse = (): typeof Response => globalThis.Response;
let built: typeof Response | undefined;

/** The quick Response class, built on first use: undici is loaded only when a function needs it. */
export function quickResponse(): typeof Response {
  return (built ??= define(nativeResponse()));
}

/** Passed to the base constructor: make a bare object (undici's constructor not run). */
const BARE = Symbol('bare');
type BaseClass = typeof Response & (new (body?: BodyInit | null, init?: ResponseInit, bare?: symbol) => Response);

/**
 * The parent of QuickResponse: undici's Response for every static and for the
 * prototype chain, but its constructor may hand back a bare object of the right
 * prototype instead of running undici's (a derived constructor's `this` is what
 * its parent returns, and its private fields are installed on that).
 */
function baseOf(NativeResponse: typeof Response): BaseClass {
  function Base(this: unknown, body?: BodyInit | null, init?: ResponseInit, bare?: symbol): Response {
    const target = new.target as unknown as typeof Response;
    if (bare === BARE) return Object.create(target.prototype) as Response;
    return Reflect.construct(NativeResponse, [body, init], target) as Response;
  }
  (Base as unknown as { prototype: unknown }).prototype = NativeResponse.prototype;
  Object.setPrototypeOf(Base, NativeResponse);
  return Base as unknown as BaseClass;
}

/** Whether a Response is a bare QuickResponse (set once the class is defined). */
let bare: (res: object) => boolean = () => false;

function define(NativeResponse: typeof Response): typeof Response {
  class QuickResponse extends baseOf(NativeResponse) {
    /** Built without undici's constructor: status, headers and the rest are ours. */
    #bare = false;
    #status = 200;
    #statusText = '';
    /** Bare: the headers as pairs until user code asks for the Headers object (then undefined). */
    #pairs: Pairs | undefined;
    #headers: Headers | undefined;
    /** The body as given; undefined when undici holds it (a stream, a Blob, FormData...). */
    #kept: Kept | undefined;
    #used = false;
    /** undici's Response for the kept body, once user code needed a stream. */
    #inner: Response | undefined;

    constructor(body?: BodyInit | null, init?: ResponseInit) {
      const kept = keep(body);
      const plain = kept === undefined ? undefined : plainInit(init);
      if (plain && (kept === null || !NULL_BODY.has(plain.status))) {
        super(null, undefined, BARE);
        this.#bare = true;
        this.#status = plain.status;
        this.#statusText = plain.statusText;
        // What undici's extraction would have set for a string body.
        if (typeof kept === 'string' && !plain.pairs.some(([k]) => k === 'content-type')) plain.pairs.push(['content-type', 'text/plain;charset=UTF-8']);
        this.#pairs = plain.pairs;
        this.#kept = kept;
        return;
      }
      const status = init?.status;
      if (kept === undefined || (kept !== null && status !== undefined && NULL_BODY.has(Number(status)))) {
        super(body, init);
        return;
      }
      super(null, init);
      this.#kept = kept;
      if (typeof kept === 'string' && !this.headers.has('content-type')) this.headers.set('content-type', 'text/plain;charset=UTF-8');
    }

    static {
      // undici's constructor reads getters (status...) before this class's fields exist on the object.
      bare = (res) => #bare in res && res.#bare;
      takeKeptBody = (res) => {
        if (!(#kept in res) || res.#kept === undefined || res.#inner || res.#used) return undefined;
        if (res.#kept !== null) res.#used = true;
        return res.#kept;
      };
      takeQuickParts = (res) => {
        if (!(#bare in res) || !res.#bare || !res.#pairs || res.#inner || res.#used) return undefined;
        const headers: Record<string, string> = {};
        const cookies: string[] = [];
        // As Headers combines them: one value per name, repeated ones joined with ", "; Set-Cookie apart.
        for (const [k, v] of res.#pairs) {
          if (k === 'set-cookie') cookies.push(v);
          else headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
        }
        if (res.#kept !== null) res.#used = true;
        return { status: res.#status, headers, cookies, body: res.#kept! };
      };
    }

    /** `instanceof Response` also holds for undici's own Responses (those `fetch()` returns); a user subclass checks as usual. */
    static override [Symbol.hasInstance](v: unknown): boolean {
      return this === QuickResponse ? v instanceof NativeResponse : Function.prototype[Symbol.hasInstance].call(this, v);
    }

    static override json(data: unknown, init?: ResponseInit): Response {
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError('Response.json: the value cannot be serialized to JSON');
      if (init === undefined) return new QuickResponse(text, { headers: { 'content-type': 'application/json' } });
      const headers = new Headers(init?.headers);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      return new QuickResponse(text, { status: init?.status, statusText: init?.statusText, headers });
    }

    override get type(): ResponseType {
      return bare(this) ? 'default' : super.type;
    }

    override get url(): string {
      return bare(this) ? '' : super.url;
    }

    override get redirected(): boolean {
      return bare(this) ? false : super.redirected;
    }

    override get status(): number {
      return bare(this) ? this.#status : super.status;
    }

    override get ok(): boolean {
      return bare(this) ? this.#status >= 200 && this.#status <= 299 : super.ok;
    }

    override get statusText(): string {
      return bare(this) ? this.#statusText : super.statusText;
    }

    override get headers(): Headers {
      if (!bare(this)) return super.headers;
      if (!this.#headers) {
        const h = new Headers();
        for (const [k, v] of this.#pairs!) h.append(k, v);
        this.#headers = h;
        this.#pairs = undefined;
      }
      return this.#headers;
    }

    /** undici's Response for the kept body (built once); a body already read is marked used there too. */
    #real(): Response {
      if (!this.#inner) {
        this.#inner = new NativeResponse(this.#kept as BodyInit | null, { status: this.status, statusText: this.statusText, headers: this.headers });
        if (this.#used) void this.#inner.body?.cancel().catch(() => undefined);
      }
      return this.#inner;
    }

    #take(): Kept {
      if (this.#used) throw new TypeError('Body is unusable: Body has already been read');
      if (this.#kept !== null) this.#used = true;
      return this.#kept!;
    }

    #bytes(): Bytes {
      const k = this.#take();
      return k === null ? new Uint8Array(0) : typeof k === 'string' ? encoder.encode(k) : k;
    }

    override get body(): ReadableStream<Bytes> | null {
      if (!(#kept in this) || this.#kept === undefined) return super.body;
      return this.#kept === null ? null : this.#real().body;
    }

    override get bodyUsed(): boolean {
      if (!(#kept in this) || this.#kept === undefined) return super.bodyUsed;
      return this.#inner ? this.#inner.bodyUsed : this.#used;
    }

    override async text(): Promise<string> {
      if (this.#kept === undefined) return super.text();
      if (this.#inner) return this.#inner.text();
      const k = this.#take();
      if (k === null) return '';
      if (typeof k !== 'string') return decoder.decode(k);
      // As the standard's UTF-8 decode of the string's bytes: lone surrogates become U+FFFD, a leading BOM goes.
      const s = wellFormed(k);
      return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
    }

    override async json(): Promise<unknown> {
      if (this.#kept === undefined) return super.json();
      if (this.#inner) return this.#inner.json();
      return JSON.parse(await this.text()) as unknown;
    }

    override async arrayBuffer(): Promise<ArrayBuffer> {
      if (this.#kept === undefined) return super.arrayBuffer();
      if (this.#inner) return this.#inner.arrayBuffer();
      const b = this.#bytes();
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    }

    override async bytes(): Promise<Bytes> {
      if (this.#kept === undefined) return new Uint8Array(await super.arrayBuffer());
      if (this.#inner) return new Uint8Array(await this.#inner.arrayBuffer());
      // Our own copy, and the body is now used: nobody else holds it.
      return this.#bytes();
    }

    override blob(): Promise<Blob> {
      return this.#kept === undefined ? super.blob() : this.#real().blob();
    }

    override formData(): Promise<FormData> {
      return this.#kept === undefined ? super.formData() : this.#real().formData();
    }

    override clone(): Response {
      if (this.#kept === undefined) return super.clone();
      if (this.#inner) {
        // Teeing a stream already handed out is undici's job; status and headers are ours.
        return new NativeResponse(this.#inner.clone().body, { status: this.status, statusText: this.statusText, headers: this.headers });
      }
      if (this.#used) throw new TypeError('Response.clone: Body has already been consumed.');
      const copy = this.#kept === null || typeof this.#kept === 'string' ? this.#kept : this.#kept.slice();
      // The copy's headers are its own (a Headers copy), as the standard's clone makes them.
      return new QuickResponse(copy, { status: this.status, statusText: this.statusText, headers: new Headers(this.headers) });
    }
  }

  Object.defineProperty(QuickResponse, 'name', { value: 'Response' });
  return QuickResponse;
}

/**
 * Makes the quick Response the global one, before the function's module loads. Node's
 * global is an accessor that loads undici on first use; this one stays as lazy (a
 * JSON-mode function that never touches Response does not load undici at all).
 */
let installed = false;
export function installQuickResponse(): void {
  const d = Object.getOwnPropertyDescriptor(globalThis, 'Response');
  if (!d || installed) return;
  installed = true;
  nativeResponse = d.get ? () => d.get!.call(globalThis) as typeof Response : () => d.value as typeof Response;
  const settle = (value: unknown) => Object.defineProperty(globalThis, 'Response', { value, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(globalThis, 'Response', {
    configurable: true,
    enumerable: false,
    get: () => (settle(quickResponse()), built),
    set: settle,
  });
}
