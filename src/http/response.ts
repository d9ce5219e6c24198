// What an HTTP function answered, checked and normalized. Everything that
// comes out of a sandbox is hostile input: a response object is refused with
// InvalidResponse (502) unless every part is well formed, so nothing it holds
// can break or split the HTTP answer.
import { LaminaError } from '../errors.js';

export interface HttpResponse {
  statusCode: number;
  /** Lower-case names; one value each (Set-Cookie lives in `cookies`). */
  headers: Record<string, string>;
  cookies: string[];
  body: string;
  isBase64Encoded: boolean;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Field values: visible ASCII, spaces, tabs and obs-text; never CR, LF or NUL.
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** Set by the HTTP server from the body it sends, or owned by the connection: a function may not set them. */
const DROPPED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'trailer', 'te', 'proxy-connection']);

function bad(message: string): LaminaError {
  return new LaminaError('InvalidResponse', message);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  return `a value of type ${typeof v}`;
}

/** Checks a response object; throws InvalidResponse naming the first thing wrong. */
export function checkResponse(value: unknown, who: string): HttpResponse {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad(`${who} must be an object with statusCode (got ${describe(value)})`);
  const r = value as Record<string, unknown>;
  const status = r.statusCode;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    throw bad(`${who}: statusCode must be an integer from 100 to 599 (got ${describe(status)})`);
  }
  // 1xx are interim answers in HTTP: sent as the final one, they would leave the client hanging.
  if (status < 200) throw bad(`${who}: statusCode ${status} is informational (1xx); a final answer needs 200 to 599`);
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  if (r.headers !== undefined && r.headers !== null) {
    if (typeof r.headers !== 'object' || Array.isArray(r.headers)) throw bad(`${who}: headers must be an object of strings (got ${describe(r.headers)})`);
    for (const [name, v] of Object.entries(r.headers as Record<string, unknown>)) {
      if (!HEADER_NAME.test(name)) throw bad(`${who}: ${JSON.stringify(name)} is not a valid header name`);
      if (typeof v !== 'string') throw bad(`${who}: the value of header "${name}" must be a string (got ${describe(v)})`);
      if (!HEADER_VALUE.test(v)) throw bad(`${who}: the value of header "${name}" holds a control character (CR, LF or NUL)`);
      const key = name.toLowerCase();
      if (DROPPED.has(key)) continue;
      if (key === 'set-cookie') cookies.push(v);
      else headers[key] = key in headers ? `${headers[key]}, ${v}` : v;
    }
  }
  if (r.cookies !== undefined && r.cookies !== null) {
    if (!Array.isArray(r.cookies)) throw bad(`${who}: cookies must be an array of strings (got ${describe(r.cookies)})`);
    r.cookies.forEach((c, i) => {
      if (typeof c !== 'string') throw bad(`${who}: cookies[${i}] must be a string (got ${describe(c)})`);
      if (!HEADER_VALUE.test(c)) throw bad(`${who}: cookies[${i}] holds a control character (CR, LF or NUL)`);
      cookies.push(c);
    });
  }
  if (r.isBase64Encoded !== undefined && typeof r.isBase64Encoded !== 'boolean') throw bad(`${who}: isBase64Encoded must be true or false (got ${describe(r.isBase64Encoded)})`);
  const isBase64Encoded = r.isBase64Encoded === true;
  let body = '';
  if (r.body !== undefined && r.body !== null) {
    if (typeof r.body !== 'string') throw bad(`${who}: body must be a string (got ${describe(r.body)}); serialize objects with JSON.stringify`);
    body = r.body;
  }
  if (isBase64Encoded && !BASE64.test(body)) throw bad(`${who}: isBase64Encoded is true but body is not base64`);
  return { statusCode: status, headers, cookies, body, isBase64Encoded };
}

/**
 * A request-mode handler's return value, read the AWS way: an object with a
 * `statusCode` is a response (checked); any other value is answered as 200 JSON.
 */
export function responseOfRequestMode(value: unknown): HttpResponse {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'statusCode' in value) return checkResponse(value, 'the returned response');
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    cookies: [],
    body: JSON.stringify(value === undefined ? null : value),
    isBase64Encoded: false,
  };
}

/** The body's bytes. */
export function bodyBytes(r: HttpResponse): Buffer {
  return r.isBase64Encoded ? Buffer.from(r.body, 'base64') : Buffer.from(r.body, 'utf8');
}
