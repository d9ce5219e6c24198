// src/http and the gateway's CORS rules, without servers: the 2.0 event,
// the text-or-base64 rule, response checks, and the cluster's call framing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCall, encodeCall } from '../../src/cluster/protocol.js';
import { corsHeaders, preflightHeaders } from '../../src/gateway/cors.js';
import type { HttpCall } from '../../src/http/call.js';
import { absoluteUrl, buildEvent, buildFetchEvent, isTextBody } from '../../src/http/event.js';
import { prepareCall } from '../../src/http/prepare.js';
import type { Manifest } from '../../src/registry/types.js';
import { checkResponse, responseOfRequestMode } from '../../src/http/response.js';

const call = (over: Partial<HttpCall> = {}): HttpCall => ({
  method: 'POST',
  url: '/run/fn/a/b?x=1&x=2&e=%20',
  headers: [['host', 'example.test:5000'], ['x-multi', 'a'], ['x-multi', 'b'], ['cookie', 'k1=v1; k2=v2'], ['content-type', 'text/plain'], ['user-agent', 'ua']],
  body: Buffer.from('héllo'),
  sourceIp: '127.0.0.1',
  protocol: 'HTTP/1.1',
  ...over,
});

test('the 2.0 event: path after /run/:name, query, joined headers, cookies, context', () => {
  const e = buildEvent(call(), 'fn', 'req-1', Date.UTC(2026, 0, 2, 3, 4, 5));
  assert.equal(e.rawPath, '/a/b');
  assert.equal(e.rawQueryString, 'x=1&x=2&e=%20');
  assert.deepEqual(e.queryStringParameters, { x: '1,2', e: ' ' });
  assert.equal(e.headers['x-multi'], 'a,b');
  assert.deepEqual(e.cookies, ['k1=v1', 'k2=v2']);
  assert.equal(e.requestContext.domainName, 'example.test:5000');
  assert.equal(e.requestContext.http.userAgent, 'ua');
  assert.equal(e.requestContext.time, '02/Jan/2026:03:04:05 +0000');
  assert.equal(e.body, 'héllo');
  assert.equal(e.isBase64Encoded, false);
  const root = buildEvent(call({ url: '/run/fn', body: Buffer.alloc(0) }), 'fn', 'r');
  assert.equal(root.rawPath, '/');
  assert.equal(root.body, undefined);
  assert.equal(root.queryStringParameters, undefined);
  assert.equal(buildEvent(call({ url: '/run/fn/' }), 'fn', 'r').rawPath, '/');
});

test('bodies: text when textual (or untyped) and valid UTF-8, else base64', () => {
  assert.equal(isTextBody('application/json; charset=utf-8', Buffer.from('{}')), true);
  assert.equal(isTextBody('application/vnd.api+json', Buffer.from('{}')), true);
  assert.equal(isTextBody(undefined, Buffer.from('plain')), true);
  assert.equal(isTextBody('image/png', Buffer.from('abc')), false);
  assert.equal(isTextBody('text/plain', Buffer.from([0xff, 0xfe])), false);
  const bin = Buffer.from([0, 1, 2, 255]);
  const e = buildEvent(call({ headers: [['content-type', 'application/octet-stream']], body: bin }), 'fn', 'r');
  assert.equal(e.isBase64Encoded, true);
  assert.deepEqual(Buffer.from(e.body!, 'base64'), bin);
});

test('a fetch handler\'s event: method, joined headers and the body, nothing of the 2.0 event', () => {
  assert.deepEqual(buildFetchEvent(call()), {
    method: 'POST',
    headers: { host: 'example.test:5000', 'x-multi': 'a,b', cookie: 'k1=v1; k2=v2', 'content-type': 'text/plain', 'user-agent': 'ua' },
    body: 'héllo',
    isBase64Encoded: false,
  });
  assert.deepEqual(buildFetchEvent(call({ method: 'GET', headers: [], body: Buffer.alloc(0) })), { method: 'GET', headers: {}, isBase64Encoded: false });
  const bin = Buffer.from([0, 1, 2, 255]);
  const e = buildFetchEvent(call({ headers: [['content-type', 'text/plain']], body: bin }));
  assert.equal(e.isBase64Encoded, true);
  assert.deepEqual(Buffer.from(e.body!, 'base64'), bin);
  // prepareCall sends it to fetch handlers (the module's kind), the 2.0 event to request mode.
  const m = { name: 'fn', http: { event: 'request' } } as unknown as Manifest;
  const f = prepareCall(m, 'fetch', 'r', undefined, call());
  assert.deepEqual(f.event, buildFetchEvent(call()));
  assert.deepEqual(f.http, { mode: 'fetch', url: 'http://example.test:5000/run/fn/a/b?x=1&x=2&e=%20', basePath: '/run/fn' });
  assert.equal((prepareCall(m, 'handler', 'r', undefined, call()).event as { version?: string }).version, '2.0');
  // An async event (no raw request) reaches a fetch handler as a POST of its JSON.
  assert.deepEqual(prepareCall(m, 'fetch', 'r', { a: 1 }, undefined).event, { method: 'POST', headers: { host: 'localhost', 'content-type': 'application/json' }, body: '{"a":1}', isBase64Encoded: false });
});

test('the absolute URL refuses a Host header that is not a host', () => {
  assert.equal(absoluteUrl(call()), 'http://example.test:5000/run/fn/a/b?x=1&x=2&e=%20');
  assert.equal(absoluteUrl(call({ headers: [['host', 'evil/../x y']] })), 'http://localhost/run/fn/a/b?x=1&x=2&e=%20');
});

test('response objects are checked and normalized', () => {
  const r = checkResponse({ statusCode: 201, headers: { 'Content-Type': 'text/plain', 'Set-Cookie': 'a=1', 'content-length': '999', Connection: 'close' }, cookies: ['b=2'], body: 'x' }, 'r');
  assert.deepEqual(r, { statusCode: 201, headers: { 'content-type': 'text/plain' }, cookies: ['a=1', 'b=2'], body: 'x', isBase64Encoded: false });
  assert.throws(() => checkResponse(null, 'r'), /InvalidResponse|must be an object/);
  assert.throws(() => checkResponse({ statusCode: 99 }, 'r'), /100 to 599/);
  assert.throws(() => checkResponse({ statusCode: 200, headers: { a: 'x\ny' } }, 'r'), /control character/);
  assert.deepEqual(responseOfRequestMode([1, 2]).body, '[1,2]');
  assert.deepEqual(responseOfRequestMode({ ok: true }).statusCode, 200);
  assert.equal(responseOfRequestMode(undefined).body, 'null');
});

test('CORS: allowed origins, "*", refusals', () => {
  const cors = { allowOrigins: ['https://a.example'], allowMethods: ['GET' as const, 'POST' as const], allowHeaders: ['content-type'], exposeHeaders: [], allowCredentials: true, maxAge: 60 };
  assert.equal(corsHeaders(cors, 'https://a.example')['access-control-allow-origin'], 'https://a.example');
  assert.equal(corsHeaders(cors, 'https://a.example')['access-control-allow-credentials'], 'true');
  assert.deepEqual(corsHeaders(cors, 'https://b.example'), { vary: 'Origin' });
  assert.deepEqual(corsHeaders(undefined, 'https://a.example'), {});
  assert.ok(preflightHeaders(cors, 'https://a.example', 'POST', 'Content-Type'));
  assert.equal(preflightHeaders(cors, 'https://a.example', 'DELETE', undefined), undefined);
  assert.equal(preflightHeaders(cors, 'https://a.example', 'POST', 'x-other'), undefined);
  assert.equal(preflightHeaders({ ...cors, allowOrigins: ['*'], allowCredentials: false }, 'https://z.example', 'GET', undefined)?.['access-control-allow-origin'], '*');
});

test('cluster framing: a raw request survives encode/decode byte for byte; garbage is refused', () => {
  const c = call({ body: Buffer.from([10, 0, 255, 10]), jsonError: 'nope' });
  const back = decodeCall(encodeCall(c));
  assert.deepEqual({ ...back, body: [...back.body] }, { ...c, body: [...c.body] });
  assert.throws(() => decodeCall(Buffer.from('no newline')));
  assert.throws(() => decodeCall(Buffer.from('{"method":1}\n')));
});
