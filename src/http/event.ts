// The AWS Lambda function-URL event (payload format 2.0) built from an
// HttpCall: what `request`, fetch, WSGI and ASGI functions receive.
import { isUtf8 } from 'node:buffer';
import { splitPath, type HttpCall } from './call.js';

export interface FunctionUrlEvent {
  version: '2.0';
  routeKey: '$default';
  rawPath: string;
  rawQueryString: string;
  headers: Record<string, string>;
  queryStringParameters?: Record<string, string>;
  cookies?: string[];
  requestContext: {
    accountId: 'lamina';
    apiId: string;
    domainName: string;
    http: { method: string; path: string; protocol: string; sourceIp: string; userAgent: string };
    requestId: string;
    routeKey: '$default';
    stage: '$default';
    time: string;
    timeEpoch: number;
  };
  body?: string;
  isBase64Encoded: boolean;
}

const TEXT_TYPES = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|graphql|x-ndjson)\b|application\/[^;]*\+(json|xml)\b|image\/svg\+xml\b)/i;

/** Whether a content type is textual (or absent): its body travels as text if it is valid UTF-8. */
export function isTextType(contentType: string | undefined): boolean {
  return !contentType || TEXT_TYPES.test(contentType.trim());
}

/** Whether a body travels as text: a textual (or absent) content type and valid UTF-8; else base64. */
export function isTextBody(contentType: string | undefined, body: Buffer): boolean {
  // isUtf8 checks in place; a fatal TextDecoder would build the string only to drop it.
  return isTextType(contentType) && isUtf8(body);
}

/** queryStringParameters as AWS builds them: repeated keys joined with ",". */
function queryParams(raw: string): Record<string, string> | undefined {
  if (!raw) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const [k, v] of new URLSearchParams(raw)) {
    out[k] = k in out ? `${out[k]},${v}` : v;
    any = true;
  }
  return any ? out : undefined;
}

/** Cookie header(s) split into single `name=value` strings. */
function cookiesOf(headers: Record<string, string>): string[] | undefined {
  const raw = headers.cookie;
  if (!raw) return undefined;
  const list = raw
    .split(/;|,(?=\s*[^;=,\s]+=)/)
    .map((c) => c.trim())
    .filter(Boolean);
  return list.length ? list : undefined;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** AWS's requestContext.time format: 12/Mar/2020:19:03:58 +0000 */
function formatAwsTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

// The text changes once a second: every call in that second reuses it.
let lastSecond = NaN;
let lastText = '';
function awsTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    lastText = formatAwsTime(new Date(ms));
  }
  return lastText;
}

/** Header pairs as the events carry them: one value per lower-case name, repeated ones joined with ",". */
function joinedHeaders(call: HttpCall): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of call.headers) headers[k] = k in headers ? `${headers[k]},${v}` : v;
  return headers;
}

/** The body as the channel carries it: text when textual and valid UTF-8, else base64; absent when empty. */
function setBody(event: { body?: string; isBase64Encoded: boolean }, call: HttpCall, contentType: string | undefined): void {
  if (call.body.length === 0) return;
  const text = isTextBody(contentType, call.body);
  event.body = text ? call.body.toString('utf8') : call.body.toString('base64');
  event.isBase64Encoded = !text;
}

export function buildEvent(call: HttpCall, name: string, requestId: string, now = Date.now()): FunctionUrlEvent {
  const headers = joinedHeaders(call);
  const { rawPath, rawQueryString } = splitPath(call.url, name);
  const qs = queryParams(rawQueryString);
  const cookies = cookiesOf(headers);
  const event: FunctionUrlEvent = {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString,
    headers,
    ...(qs ? { queryStringParameters: qs } : {}),
    ...(cookies ? { cookies } : {}),
    requestContext: {
      accountId: 'lamina',
      apiId: name,
      domainName: headers.host ?? '',
      http: { method: call.method, path: rawPath, protocol: call.protocol, sourceIp: call.sourceIp, userAgent: headers['user-agent'] ?? '' },
      requestId,
      routeKey: '$default',
      stage: '$default',
      time: awsTime(now),
      timeEpoch: now,
    },
    isBase64Encoded: false,
  };
  setBody(event, call, headers['content-type']);
  return event;
}

/**
 * A fetch handler's event (docs/runtime-protocol.md): only what its Request is
 * built from (the URL travels in the frame's `http.url`). The 2.0 event is three
 * times the size, and serializing and parsing it was a good part of what a fetch
 * call cost beyond a JSON one.
 */
export interface FetchEvent {
  method: string;
  headers: Record<string, string>;
  body?: string;
  isBase64Encoded: boolean;
}

export function buildFetchEvent(call: HttpCall): FetchEvent {
  const headers = joinedHeaders(call);
  const event: FetchEvent = { method: call.method, headers, isBase64Encoded: false };
  setBody(event, call, headers['content-type']);
  return event;
}

/** The absolute URL the client asked for (fetch handlers' request.url). */
export function absoluteUrl(call: HttpCall): string {
  const given = call.headers.find(([k]) => k === 'host')?.[1];
  // The Host header is the client's word: anything that is not a host[:port] would make an invalid URL.
  const host = given && /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(given) ? given : 'localhost';
  const proto = call.headers.find(([k]) => k === 'x-forwarded-proto')?.[1] === 'https' ? 'https' : 'http';
  return `${proto}://${host}${call.url}`;
}
