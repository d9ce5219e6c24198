// TextEncoder / TextDecoder, UTF-8 only (the WHATWG decoder algorithm, with
// U+FFFD for malformed input, `fatal`, `ignoreBOM` and streaming).

export class TextEncoderPolyfill {
  get encoding(): string {
    return 'utf-8';
  }

  encode(input: unknown = ''): Uint8Array {
    const s = String(input);
    const out = new Uint8Array(s.length * 3);
    return out.slice(0, encodeInto(s, out).written);
  }

  encodeInto(input: unknown, dest: Uint8Array): { read: number; written: number } {
    return encodeInto(String(input), dest);
  }
}

function encodeInto(s: string, out: Uint8Array): { read: number; written: number } {
  let w = 0;
  let i = 0;
  for (; i < s.length; i++) {
    let c = s.charCodeAt(i);
    let units = 1;
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        units = 2;
      } else c = 0xfffd; // a lone surrogate
    }
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (w + size > out.length) break; // never a partial character
    if (size === 1) out[w++] = c;
    else if (size === 2) {
      out[w++] = 0xc0 | (c >> 6);
      out[w++] = 0x80 | (c & 0x3f);
    } else if (size === 3) {
      out[w++] = 0xe0 | (c >> 12);
      out[w++] = 0x80 | ((c >> 6) & 0x3f);
      out[w++] = 0x80 | (c & 0x3f);
    } else {
      out[w++] = 0xf0 | (c >> 18);
      out[w++] = 0x80 | ((c >> 12) & 0x3f);
      out[w++] = 0x80 | ((c >> 6) & 0x3f);
      out[w++] = 0x80 | (c & 0x3f);
    }
    i += units - 1;
  }
  return { read: i, written: w };
}

const LABELS = new Set(['utf-8', 'utf8', 'unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'x-unicode20utf8']);

/** Bytes of any BufferSource, without copying. */
export function bytesOf(input: unknown): Uint8Array {
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new TypeError('The provided value is not of type "(ArrayBuffer or ArrayBufferView)"');
}

export class TextDecoderPolyfill {
  readonly fatal: boolean;
  readonly ignoreBOM: boolean;
  private cp = 0;
  private needed = 0;
  private seen = 0;
  private lower = 0x80;
  private upper = 0xbf;
  private bomSeen = false;

  constructor(label: unknown = 'utf-8', options: { fatal?: boolean; ignoreBOM?: boolean } = {}) {
    if (!LABELS.has(String(label).trim().toLowerCase())) throw new RangeError(`The encoding label provided ('${String(label)}') is invalid (isolates decode UTF-8 only).`);
    this.fatal = Boolean(options.fatal);
    this.ignoreBOM = Boolean(options.ignoreBOM);
  }

  get encoding(): string {
    return 'utf-8';
  }

  decode(input?: unknown, options: { stream?: boolean } = {}): string {
    const bytes = input === undefined ? new Uint8Array(0) : bytesOf(input);
    const units: number[] = [];
    const chunks: string[] = [];
    const emit = (c: number): void => {
      if (!this.bomSeen) {
        this.bomSeen = true;
        if (c === 0xfeff && !this.ignoreBOM) return;
      }
      if (c >= 0x10000) {
        c -= 0x10000;
        units.push(0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
      } else units.push(c);
      if (units.length >= 8192) chunks.push(String.fromCharCode(...units.splice(0)));
    };
    const error = (): void => {
      if (this.fatal) {
        this.reset();
        throw new TypeError('The encoded data was not valid UTF-8.');
      }
      emit(0xfffd);
    };
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      if (this.needed === 0) {
        if (b <= 0x7f) emit(b);
        else if (b >= 0xc2 && b <= 0xdf) (this.needed = 1), (this.cp = b & 0x1f);
        else if (b >= 0xe0 && b <= 0xef) {
          if (b === 0xe0) this.lower = 0xa0;
          if (b === 0xed) this.upper = 0x9f;
          this.needed = 2;
          this.cp = b & 0xf;
        } else if (b >= 0xf0 && b <= 0xf4) {
          if (b === 0xf0) this.lower = 0x90;
          if (b === 0xf4) this.upper = 0x8f;
          this.needed = 3;
          this.cp = b & 0x7;
        } else error();
        continue;
      }
      if (b < this.lower || b > this.upper) {
        this.partialReset();
        error();
        i--; // the byte starts something new
        continue;
      }
      this.lower = 0x80;
      this.upper = 0xbf;
      this.cp = (this.cp << 6) | (b & 0x3f);
      if (++this.seen === this.needed) {
        const c = this.cp;
        this.partialReset();
        emit(c);
      }
    }
    if (!options.stream) {
      if (this.needed) {
        this.partialReset();
        error();
      }
      this.bomSeen = false;
    }
    chunks.push(String.fromCharCode(...units));
    return chunks.join('');
  }

  private partialReset(): void {
    this.cp = this.needed = this.seen = 0;
    this.lower = 0x80;
    this.upper = 0xbf;
  }

  private reset(): void {
    this.partialReset();
    this.bomSeen = false;
  }
}
