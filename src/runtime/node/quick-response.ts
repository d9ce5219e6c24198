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
// Bundled into the runtime: node:* and globals only.

/** A body held in memory: a string, bytes (our own copy), or none. */
type Bytes = Uint8Array<ArrayBuffer>;
type Kept = string | Bytes | null;

/** Statuses that may not carry a body: undici's constructor words the refusal. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** The body's bytes, copied as the Fetch standard copies a BufferSource; undefined when not held in memory. */
function keep(body: unknown): Kept | undefined {
  if (body === null || body === undefined) return null;
  if (typeof body === 'string') return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body.slice(0));
  if (ArrayBuffer.isView(body) && body.buffer instanceof ArrayBuffer) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength).slice();
  return undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A string as its UTF-8 bytes would decode: lone surrogates become U+FFFD (Node 20+ has toWellFormed). */
export const wellFormed = (s: string): string => (s as string & { toWellFormed(): string }).toWellFormed();

/** The kept body for the runtime's own read (answerOf); undefined when it must read the Response the standard way. */
export let takeKeptBody: (res: Response) => Kept | undefined = () => undefined;

/** undici's Response, however it is reached (Node's global is a lazy accessor that loads undici). */
let nativeResponse = (): typeof Response => globalThis.Response;
let built: typeof Response | undefined;

/** The quick Response class, built on first use: undici is loaded only when a function needs it. */
export function quickResponse(): typeof Response {
  return (built ??= define(nativeResponse()));
}

function define(NativeResponse: typeof Response): typeof Response {
  class QuickResponse extends NativeResponse {
    /** The body as given; undefined when undici holds it (a stream, a Blob, FormData...). */
    #kept: Kept | undefined;
    #used = false;
    /** undici's Response for the kept body, once user code needed a stream. */
    #inner: Response | undefined;

    constructor(body?: BodyInit | null, init?: ResponseInit) {
      const kept = keep(body);
      const status = init?.status;
      if (kept === undefined || (kept !== null && status !== undefined && NULL_BODY.has(Number(status)))) {
        super(body, init);
        return;
      }
      super(null, init);
      this.#kept = kept;
      // What undici's extraction would have set for a string body.
      if (typeof kept === 'string' && !this.headers.has('content-type')) this.headers.set('content-type', 'text/plain;charset=UTF-8');
    }

    static {
      takeKeptBody = (res) => {
        if (!(#kept in res) || res.#kept === undefined || res.#inner || res.#used) return undefined;
        if (res.#kept !== null) res.#used = true;
        return res.#kept;
      };
    }

    /** `instanceof Response` also holds for undici's own Responses (those `fetch()` returns); a user subclass checks as usual. */
    static override [Symbol.hasInstance](v: unknown): boolean {
      return this === QuickResponse ? v instanceof NativeResponse : Function.prototype[Symbol.hasInstance].call(this, v);
    }

    static override json(data: unknown, init?: ResponseInit): Response {
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError('Response.json: the value cannot be serialized to JSON');
      const headers = new Headers(init?.headers);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      return new QuickResponse(text, { status: init?.status, statusText: init?.statusText, headers });
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
      if (this.#kept === undefined) return super.body;
      return this.#kept === null ? null : this.#real().body;
    }

    override get bodyUsed(): boolean {
      if (this.#kept === undefined) return super.bodyUsed;
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
      return new QuickResponse(copy, { status: this.status, statusText: this.statusText, headers: this.headers });
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
