// The Node runtime's Request for fetch handlers (src/runtime/node/fetch-call.ts):
// a proxy that answers the common reads from the event and builds a real undici
// Request for everything else must behave as a Request does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CallContext, requestOf } from '../../src/runtime/node/fetch-call.js';

const post = (body: string, extra: object = {}) => ({ headers: { 'content-type': 'application/json', 'x-a': 'b' }, requestContext: { http: { method: 'POST' } }, body, ...extra });

test('the quick reads: method, text (BOM dropped), json, arrayBuffer of a base64 body, one read only', async () => {
  const r = requestOf('http://localhost/run/f?x=1', post('\uFEFF{"hello":"world"}'));
  assert.ok(r instanceof Request);
  assert.equal(r.method, 'POST');
  assert.equal(r.bodyUsed, false);
  assert.equal(await r.text(), '{"hello":"world"}');
  assert.equal(r.bodyUsed, true);
  await assert.rejects(r.text(), TypeError);
  // Touching anything else builds the real Request, which knows the body was read.
  assert.equal(r.headers.get('x-a'), 'b');
  assert.equal(r.url, 'http://localhost/run/f?x=1');
  assert.equal(r.bodyUsed, true);
  await assert.rejects(r.text(), TypeError);
  assert.deepEqual(await requestOf('http://localhost/', post('{"a":[1]}')).json(), { a: [1] });
  assert.equal(await requestOf('http://localhost/', post('a\uD800b')).text(), 'a\uFFFDb', 'a lone surrogate decodes as its UTF-8 would');
  assert.equal(new TextDecoder().decode(await requestOf('http://localhost/', post('é')).arrayBuffer()), 'é');
  const bin = requestOf('http://localhost/', post('AAEC/w==', { isBase64Encoded: true }));
  assert.deepEqual([...new Uint8Array(await bin.arrayBuffer())], [0, 1, 2, 255]);
});

test('the fetch-mode event (method at the top) and a 2.0 event both make the Request', async () => {
  const small = requestOf('http://localhost/run/f', { method: 'PUT', headers: { 'x-a': 'b' }, body: 'AAEC/w==', isBase64Encoded: true });
  assert.equal(small.method, 'PUT');
  assert.deepEqual([...new Uint8Array(await small.arrayBuffer())], [0, 1, 2, 255]);
  const built = requestOf('http://localhost/run/f', { method: 'DELETE', headers: { 'x-a': 'b' } });
  assert.equal(built.headers.get('x-a'), 'b');
  assert.equal(built.method, 'DELETE');
  assert.equal(requestOf('http://localhost/', { headers: {} }).method, 'GET', 'no method: GET');
  assert.equal(await requestOf('http://localhost/', post('2.0')).text(), '2.0');
});

test('everything else is a real Request: clone, signal, new Request(r), fetch-style use', async () => {
  const r = requestOf('http://localhost/run/f', post('abc'));
  const c = r.clone();
  assert.equal(await c.text(), 'abc');
  assert.equal(await r.text(), 'abc');
  assert.equal(r.signal.aborted, false);
  const copy = new Request(requestOf('http://localhost/run/g', post('xyz')));
  assert.equal(copy.method, 'POST');
  assert.equal(copy.url, 'http://localhost/run/g');
  assert.equal(await copy.text(), 'xyz');
  assert.ok('headers' in r);
});

test('a GET has no body: reading it gives nothing and does not use it', async () => {
  const r = requestOf('http://localhost/', { headers: {}, requestContext: { http: { method: 'GET' } }, body: 'ignored' });
  assert.equal(await r.text(), '');
  assert.equal(r.bodyUsed, false);
  assert.equal(r.body, null);
});

test('the fetch ctx: no work, work that hands over more work, failures logged not thrown', async () => {
  const idle = new CallContext();
  assert.equal(idle.pending(), false);
  await idle.settle();
  idle.passThroughOnException();

  const ctx = new CallContext();
  const done: string[] = [];
  const logged: unknown[] = [];
  const saved = console.error;
  console.error = (...a: unknown[]) => void logged.push(a);
  try {
    ctx.waitUntil(
      new Promise((r) => setTimeout(r, 5)).then(() => {
        done.push('first');
        ctx.waitUntil(Promise.resolve().then(() => done.push('nested')));
      }),
    );
    ctx.waitUntil(Promise.reject(new Error('background failed')));
    ctx.waitUntil('not a promise');
    assert.equal(ctx.pending(), true);
    await ctx.settle();
  } finally {
    console.error = saved;
  }
  assert.deepEqual(done, ['first', 'nested']);
  assert.equal(logged.length, 1);
});

test('two Requests share no state, and the proxy shows only the real Request\'s own keys', async () => {
  const a = requestOf('http://localhost/a', { method: 'POST', headers: {}, body: 'A', isBase64Encoded: false });
  const b = requestOf('http://localhost/b', { method: 'POST', headers: {}, body: 'B', isBase64Encoded: false });
  const readA = a.text;
  assert.equal(await readA(), 'A', 'a read method works detached');
  assert.equal(b.bodyUsed, false);
  assert.equal(await b.text(), 'B');
  const real = new Request('http://localhost/a', { method: 'POST', body: 'A' });
  assert.deepEqual(Reflect.ownKeys(a), Reflect.ownKeys(real));
  assert.equal(Object.getOwnPropertySymbols(a).some((s) => String(s).includes('lamina')), false);
  Object.defineProperty(a, 'extra', { value: 1, configurable: true });
  assert.equal((a as unknown as { extra: number }).extra, 1);
  assert.equal(delete (a as unknown as { extra?: number }).extra, true);
  assert.equal('extra' in a, false);
});
