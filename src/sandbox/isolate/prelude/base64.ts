// atob / btoa (forgiving base64, Latin-1 strings), as browsers define them.
import { DOMExceptionPolyfill } from './dom-exception.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const VALUE = new Map([...ALPHABET].map((c, i) => [c, i]));

export function btoa(input: unknown): string {
  const s = String(input);
  let out = '';
  for (let i = 0; i < s.length; i += 3) {
    const a = s.charCodeAt(i);
    const b = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
    const c = i + 2 < s.length ? s.charCodeAt(i + 2) : 0;
    if (a > 0xff || b > 0xff || c > 0xff) throw new DOMExceptionPolyfill('Invalid character', 'InvalidCharacterError');
    const n = (a << 16) | (b << 8) | c;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]!;
    out += i + 1 < s.length ? ALPHABET[(n >> 6) & 63]! : '=';
    out += i + 2 < s.length ? ALPHABET[n & 63]! : '=';
  }
  return out;
}

export function atob(input: unknown): string {
  let s = String(input).replace(/[\t\n\f\r ]+/g, '');
  if (s.length % 4 === 0) s = s.replace(/={1,2}$/, '');
  if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) {
    throw new DOMExceptionPolyfill('The string to be decoded is not correctly encoded.', 'InvalidCharacterError');
  }
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const ch of s) {
    acc = (acc << 6) | VALUE.get(ch)!;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((acc >> bits) & 0xff);
    }
  }
  return out;
}

/** Bytes <-> base64, for the host bridges and HTTP bodies (table-driven: bodies run to megabytes). */
const ENC = new Uint8Array(64).map((_, i) => ALPHABET.charCodeAt(i));
const DEC = new Uint8Array(256).fill(255);
for (let i = 0; i < 64; i++) DEC[ALPHABET.charCodeAt(i)] = i;

export function bytesToBase64(bytes: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  let o = 0;
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = ENC[n >> 18]!;
    out[o++] = ENC[(n >> 12) & 63]!;
    out[o++] = ENC[(n >> 6) & 63]!;
    out[o++] = ENC[n & 63]!;
  }
  if (i < bytes.length) {
    const n = (bytes[i]! << 16) | ((i + 1 < bytes.length ? bytes[i + 1]! : 0) << 8);
    out[o++] = ENC[n >> 18]!;
    out[o++] = ENC[(n >> 12) & 63]!;
    out[o++] = i + 1 < bytes.length ? ENC[(n >> 6) & 63]! : 61;
    out[o++] = 61;
  }
  let s = '';
  for (let j = 0; j < out.length; j += 8192) s += String.fromCharCode(...out.subarray(j, j + 8192));
  return s;
}

export function base64ToBytes(b64: string): Uint8Array {
  let end = b64.length;
  while (end > 0 && b64.charCodeAt(end - 1) === 61) end--;
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const c = b64.charCodeAt(i);
    const v = c < 256 ? DEC[c]! : 255;
    if (v === 255) {
      if (c === 9 || c === 10 || c === 13 || c === 32) continue;
      throw new DOMExceptionPolyfill('The string to be decoded is not correctly encoded.', 'InvalidCharacterError');
    }
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return o === out.length ? out : out.slice(0, o);
}
