// URLSearchParams in plain JS; URL parses through the host's WHATWG parser
// (a synchronous callback), so both follow the standard exactly.
import { TextDecoderPolyfill, TextEncoderPolyfill } from './text.js';

export type UrlParts = Record<(typeof PARTS)[number], string>;
const PARTS = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'] as const;
const SETTABLE = new Set(['href', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash']);

export interface UrlHost {
  /** JSON of the parts, or '' when the input is not a valid URL. */
  parse(input: string, base?: string): string;
  /** JSON of the parts after setting one of them. */
  set(href: string, part: string, value: string): string;
}

const encoder = new TextEncoderPolyfill();
const SAFE = /[A-Za-z0-9*\-._]/;

function formEncode(s: string): string {
  let out = '';
  for (const b of encoder.encode(s)) {
    const c = String.fromCharCode(b);
    out += b === 0x20 ? '+' : SAFE.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function formDecode(s: string): string {
  const bytes: number[] = [];
  const raw = encoder.encode(s.replace(/\+/g, ' '));
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    const hex = b === 0x25 && i + 2 < raw.length ? String.fromCharCode(raw[i + 1]!, raw[i + 2]!) : '';
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else bytes.push(b);
  }
  return new TextDecoderPolyfill().decode(new Uint8Array(bytes));
}

export class URLSearchParamsPolyfill {
  private list: [string, string][] = [];
  /** Set by a URL that owns these params, so changes reach its `search`. */
  private onChange: ((query: string) => void) | undefined;

  constructor(init: unknown = '') {
    if (typeof init === 'object' && init !== null) {
      if (Symbol.iterator in init) {
        for (const pair of init as Iterable<unknown>) {
          const p = [...(pair as Iterable<unknown>)];
          if (p.length !== 2) throw new TypeError('Each query pair must be an iterable [name, value] tuple');
          this.list.push([String(p[0]), String(p[1])]);
        }
      } else for (const k of Object.keys(init)) this.list.push([k, String((init as Record<string, unknown>)[k])]);
    } else this.parse(String(init));
  }

  /** @internal */
  static attach(params: URLSearchParamsPolyfill, query: string, onChange: (query: string) => void): void {
    params.parse(query);
    params.onChange = onChange;
  }

  /** @internal */
  parse(query: string): void {
    this.list = [];
    for (const piece of (query.startsWith('?') ? query.slice(1) : query).split('&')) {
      if (!piece) continue;
      const eq = piece.indexOf('=');
      this.list.push(eq < 0 ? [formDecode(piece), ''] : [formDecode(piece.slice(0, eq)), formDecode(piece.slice(eq + 1))]);
    }
  }

  get size(): number {
    return this.list.length;
  }
  append(name: unknown, value: unknown): void {
    this.list.push([String(name), String(value)]);
    this.changed();
  }
  delete(name: unknown, value?: unknown): void {
    this.list = this.list.filter(([k, v]) => k !== String(name) || (value !== undefined && v !== String(value)));
    this.changed();
  }
  get(name: unknown): string | null {
    return this.list.find(([k]) => k === String(name))?.[1] ?? null;
  }
  getAll(name: unknown): string[] {
    return this.list.filter(([k]) => k === String(name)).map(([, v]) => v);
  }
  has(name: unknown, value?: unknown): boolean {
    return this.list.some(([k, v]) => k === String(name) && (value === undefined || v === String(value)));
  }
  set(name: unknown, value: unknown): void {
    const n = String(name);
    const i = this.list.findIndex(([k]) => k === n);
    if (i < 0) this.list.push([n, String(value)]);
    else this.list = [...this.list.slice(0, i), [n, String(value)], ...this.list.slice(i + 1).filter(([k]) => k !== n)];
    this.changed();
  }
  sort(): void {
    // Stable, by UTF-16 code units, as the standard says.
    this.list = this.list.map((p, i) => [p, i] as const).sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1])).map(([p]) => p);
    this.changed();
  }
  forEach(cb: (value: string, name: string, params: this) => void, thisArg?: unknown): void {
    for (const [k, v] of this.list) cb.call(thisArg, v, k, this);
  }
  keys(): IterableIterator<string> {
    return this.list.map(([k]) => k)[Symbol.iterator]();
  }
  values(): IterableIterator<string> {
    return this.list.map(([, v]) => v)[Symbol.iterator]();
  }
  entries(): IterableIterator<[string, string]> {
    return this.list.map(([k, v]) => [k, v] as [string, string])[Symbol.iterator]();
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
  toString(): string {
    return this.list.map(([k, v]) => `${formEncode(k)}=${formEncode(v)}`).join('&');
  }
  get [Symbol.toStringTag](): string {
    return 'URLSearchParams';
  }

  private changed(): void {
    this.onChange?.(this.toString());
  }
}

export function makeURL(host: UrlHost): unknown {
  const parse = (input: unknown, base?: unknown): UrlParts | undefined => {
    const json = host.parse(String(input), base === undefined ? undefined : String(base));
    return json ? (JSON.parse(json) as UrlParts) : undefined;
  };

  class URL {
    #parts: UrlParts;
    #params = new URLSearchParamsPolyfill();

    constructor(input: unknown, base?: unknown) {
      const parts = parse(input, base);
      if (!parts) throw new TypeError(`Invalid URL: ${String(input)}`);
      this.#parts = parts;
      this.#syncParams();
    }

    static canParse(input: unknown, base?: unknown): boolean {
      return parse(input, base) !== undefined;
    }

    get searchParams(): URLSearchParamsPolyfill {
      return this.#params;
    }
    toString(): string {
      return this.#parts.href;
    }
    toJSON(): string {
      return this.#parts.href;
    }
    get [Symbol.toStringTag](): string {
      return 'URL';
    }

    #set(part: string, value: unknown): void {
      const json = host.set(this.#parts.href, part, String(value));
      if (!json) throw new TypeError(`Invalid URL: ${String(value)}`);
      this.#parts = JSON.parse(json) as UrlParts;
      this.#syncParams();
    }

    #syncParams(): void {
      URLSearchParamsPolyfill.attach(this.#params, this.#parts.search, (query) => {
        const json = host.set(this.#parts.href, 'search', query);
        if (json) this.#parts = JSON.parse(json) as UrlParts;
      });
    }

    static {
      for (const part of PARTS) {
        Object.defineProperty(URL.prototype, part, {
          get(this: URL) {
            return this.#parts[part];
          },
          set: SETTABLE.has(part)
            ? function (this: URL, value: unknown) {
                this.#set(part, value);
              }
            : undefined,
          enumerable: true,
          configurable: true,
        });
      }
    }
  }
  return URL;
}
