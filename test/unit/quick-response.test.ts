// The Node runtime's Response for fetch handlers (src/runtime/node/quick-response.ts):
// a body held in memory is kept as given and read back without undici's streams,
// and everything a handler can do with a Response still works as undici's does.
// answerOf (fetch-call.ts) must give the same wire answer for it as for undici's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { InvalidResponseError, answer, answerOf } from '../../src/runtime/node/fetch-call.js';
import { installQuickResponse, quickResponse } from '../../src/runtime/node/quick-response.js';

const NativeResponse = globalThis.Response;
const QuickResponse = quickResponse();
const CAP = 6 * 1024 * 1024;

test('each in-memory body kind reads back as undici reads it, once', async () => {
  const bytes = new Uint8Array([104, 105, 0, 255]);
  const cases: [string, () => BodyInit | null | undefined][] = [
    ['string', () => 'héllo \u{1F600}'],
    ['string with a BOM', () => '\uFEFFbom'],
    ['string with a lone surrogate', () => 'a\uD800b'],
    ['ArrayBuffer', () => bytes.slice().buffer],
    ['Uint8Array', () => bytes.slice()],
    ['Uint8Array view at an offset', () => new Uint8Array(bytes.slice().buffer, 1, 2)],
    ['DataView', () => new DataView(bytes.slice().buffer, 1, 3)],
    ['Int16Array', () => new Int16Array([1, -1])],
    ['null', () => null],
    ['undefined', () => undefined],
    ['empty string', () => ''],
  ];
  for (const [what, body] of cases) {
    for (const read of ['text', 'arrayBuffer', 'bytes', 'json-or-text'] as const) {
      const q = new QuickResponse(body(), { status: 201, statusText: 'Made', headers: { 'x-a': '1' } });
      const n = new NativeResponse(body(), { status: 201, statusText: 'Made', headers: { 'x-a': '1' } });
      assert.ok(q instanceof NativeResponse, what);
      assert.equal(q.status, 201);
      assert.equal(q.statusText, 'Made');
      assert.equal(q.ok, true);
      assert.deepEqual([...q.headers], [...n.headers], `${what}: headers`);
      assert.equal(q.bodyUsed, false);
      const get = async (r: Response) => {
        if (read === 'text') return r.text();
        if (read === 'arrayBuffer') return [...new Uint8Array(await r.arrayBuffer())];
        if (read === 'bytes') return [...(await r.bytes())];
        return r.text();
      };
      assert.deepEqual(await get(q), await get(n), `${what}: ${read}`);
      assert.equal(q.bodyUsed, n.bodyUsed, `${what}: bodyUsed after ${read}`);
      if (n.bodyUsed) await assert.rejects(q.text(), TypeError, `${what}: a second read`);
      assert.equal(q.body === null, n.body === null, `${what}: body null or not`);
    }
  }
});

test('the body is a copy: changing the array afterwards changes nothing', async () => {
  const a = new Uint8Array([1, 2, 3]);
  const r = new QuickResponse(a);
  a[0] = 9;
  assert.deepEqual([...new Uint8Array(await r.arrayBuffer())], [1, 2, 3]);
});

test('json(), and Response.json() with its content type and init', async () => {
  assert.deepEqual(await new QuickResponse('{"a":[1,2]}').json(), { a: [1, 2] });
  const r = QuickResponse.json({ ok: true }, { status: 202, headers: { 'x-b': '2' } });
  assert.ok(r instanceof QuickResponse);
  assert.equal(r.status, 202);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.equal(r.headers.get('x-b'), '2');
  assert.deepEqual(await r.json(), { ok: true });
  assert.equal(QuickResponse.json(1, { headers: { 'content-type': 'application/vnd.x+json' } }).headers.get('content-type'), 'application/vnd.x+json');
  assert.throws(() => QuickResponse.json(undefined), TypeError);
  await assert.rejects(new QuickResponse('{nope').json(), SyntaxError);
});

test('the body stream: a real ReadableStream, after which the body is used', async () => {
  const r = new QuickResponse('streamed');
  const stream = r.body!;
  assert.ok(stream instanceof ReadableStream);
  assert.equal(r.body, stream, 'the same stream each time');
  let text = '';
  for await (const chunk of stream) text += Buffer.from(chunk).toString();
  assert.equal(text, 'streamed');
  assert.equal(r.bodyUsed, true);
  await assert.rejects(r.text(), TypeError);
  await assert.rejects(answerOf(r, CAP), TypeError, 'a Response whose body was read cannot be answered');
  assert.equal(new QuickResponse(null).body, null);
});

test('a body read through text() is used for the stream too', async () => {
  const r = new QuickResponse('once');
  assert.equal(await r.text(), 'once');
  assert.equal(r.bodyUsed, true);
  assert.ok(r.body instanceof ReadableStream);
  assert.equal(r.bodyUsed, true);
  await assert.rejects(r.arrayBuffer(), TypeError);
});

test('clone(): two independent bodies, before or after the stream was handed out; not once read', async () => {
  const r = new QuickResponse('twice', { status: 203, headers: { 'x-c': '3' } });
  const c = r.clone();
  assert.ok(c instanceof NativeResponse);
  assert.equal(c.status, 203);
  assert.equal(c.headers.get('x-c'), '3');
  assert.equal(await c.text(), 'twice');
  assert.equal(await r.text(), 'twice');
  assert.throws(() => r.clone(), TypeError);

  const s = new QuickResponse(new Uint8Array([7, 8]), { status: 206 });
  void s.body; // a stream handed out (not read): clone tees it
  const sc = s.clone();
  assert.equal(sc.status, 206);
  assert.deepEqual([...new Uint8Array(await sc.arrayBuffer())], [7, 8]);
  assert.deepEqual([...new Uint8Array(await s.arrayBuffer())], [7, 8]);
});

test('blob() and formData() go through undici with the content type', async () => {
  const b = await new QuickResponse('x=1&y=2', { headers: { 'content-type': 'application/x-www-form-urlencoded' } }).formData();
  assert.equal(b.get('y'), '2');
  const blob = await new QuickResponse('abc').blob();
  assert.equal(blob.type, 'text/plain;charset=utf-8');
  assert.equal(await blob.text(), 'abc');
});

test('bodies not held in memory, and refused ones, are undici\'s own', async () => {
  const streamed = new QuickResponse(new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('from a stream')), c.close()) }));
  assert.equal(await streamed.text(), 'from a stream');
  const form = new QuickResponse(new URLSearchParams({ q: 'a b' }));
  assert.equal(form.headers.get('content-type'), 'application/x-www-form-urlencoded;charset=UTF-8');
  assert.equal(await form.text(), 'q=a+b');
  assert.equal(await new QuickResponse(new Blob(['blob'])).text(), 'blob');
  assert.throws(() => new QuickResponse('body', { status: 204 }), TypeError);
  assert.throws(() => new QuickResponse('body', { status: '304' as unknown as number }), TypeError);
  assert.equal(new QuickResponse(null, { status: 204 }).status, 204);
  assert.throws(() => new QuickResponse('x', { status: 99 }), RangeError);
});

test('instanceof, name and subclasses, once installed as the global Response', async () => {
  const saved = globalThis.Response;
  try {
    installQuickResponse();
    assert.equal(globalThis.Response, QuickResponse);
    assert.equal(Response.name, 'Response');
    assert.ok(new NativeResponse('native') instanceof Response, 'what fetch() returns is a Response');
    assert.ok(new Response('quick') instanceof NativeResponse);
    assert.equal(Object.prototype.toString.call(new Response('x')), '[object Response]');
    assert.ok(!({} instanceof Response));
    class Mine extends Response {
      mine = true;
    }
    const m = new Mine('sub', { headers: { 'content-type': 'text/html' } });
    assert.ok(m instanceof Mine && m instanceof Response);
    assert.ok(!(new Response('x') instanceof Mine), 'a subclass checks as usual');
    assert.deepEqual(await answerOf(m, CAP), { statusCode: 200, headers: { 'content-type': 'text/html' }, cookies: [], body: 'sub', isBase64Encoded: false });
  } finally {
    globalThis.Response = saved;
  }
});

test('answerOf gives the same wire answer for a quick Response as for undici\'s', async () => {
  const bin = new Uint8Array([0, 1, 2, 0xff, 0xfe]);
  const cases: [BodyInit | null, ResponseInit | undefined][] = [
    ['{"hello":"world"}', { headers: { 'content-type': 'application/json' } }],
    ['plain', undefined],
    ['\uFEFFbom kept on the wire', undefined],
    ['lone \uDC00 surrogate', { headers: { 'content-type': 'text/plain' } }],
    ['a string sent as bytes', { headers: { 'content-type': 'application/octet-stream' } }],
    [bin, undefined],
    [bin, { headers: { 'content-type': 'text/plain' } }],
    [new TextEncoder().encode('valid utf-8 bytes'), undefined],
    [new TextEncoder().encode('<svg/>'), { headers: { 'content-type': 'image/svg+xml' } }],
    [null, { status: 204 }],
    ['', { status: 404, headers: [['set-cookie', 'a=1'], ['set-cookie', 'b=2'], ['x-y', 'z']] }],
  ];
  for (const [body, init] of cases) {
    const copy = () => (body instanceof Uint8Array ? body.slice() : body);
    assert.deepEqual(await answerOf(new QuickResponse(copy(), init), CAP), await answerOf(new NativeResponse(copy(), init), CAP), JSON.stringify(body));
  }
});

test('answerOf: the body cap in bytes, and what is not a Response', async () => {
  await assert.rejects(answerOf(new QuickResponse('\u00e9'.repeat(600)), 1000), /1200 bytes; the cap is 1000/);
  await assert.rejects(answerOf(new QuickResponse(new Uint8Array(1001)), 1000), /1001 bytes/);
  assert.equal(((await answerOf(new QuickResponse('\u00e9'.repeat(500)), 1000)) as { body: string }).body.length, 500);
  for (const bad of [{ status: 200, body: 'x' }, 'text', null, undefined]) await assert.rejects(answerOf(bad, CAP), InvalidResponseError);
});

/** What a Response shows of itself, body aside. */
const looks = (r: Response) => ({ status: r.status, statusText: r.statusText, ok: r.ok, type: r.type, url: r.url, redirected: r.redirected, headers: [...r.headers], cookies: r.headers.getSetCookie() });

test('a plain init (undici\'s constructor not run) reads as undici\'s: getters, headers, wire answer', async () => {
  const inits: (ResponseInit | null | undefined)[] = [
    undefined,
    null,
    {},
    { status: 299 },
    { status: 404, statusText: 'Not \there\x80' },
    { status: 500, statusText: '' },
    { headers: { 'X-A': '1', 'x-a': '2', 'Content-Type': 'text/html', 'set-cookie': 'a=1', 'x-sp': 'in side' } },
    { headers: Object.assign(Object.create(null) as Record<string, string>, { 'x-null-proto': 'ok' }) },
    { headers: {} },
  ];
  for (const init of inits) {
    for (const body of ['text', null, new Uint8Array([1, 2])]) {
      const what = `${JSON.stringify(init)} ${String(body)}`;
      const copy = () => (body instanceof Uint8Array ? body.slice() : body);
      assert.deepEqual(looks(new QuickResponse(copy(), init ?? undefined)), looks(new NativeResponse(copy(), init ?? undefined)), what);
      assert.deepEqual(await answerOf(new QuickResponse(copy(), init ?? undefined), CAP), await answerOf(new NativeResponse(copy(), init ?? undefined), CAP), what);
    }
  }
});

test('inits the quick path does not take are undici\'s: the same conversions and the same errors', () => {
  const inits: unknown[] = [
    5,
    'init',
    { status: '201' },
    { status: 201.7 },
    { status: NaN },
    { status: 65736 },
    { status: 199 },
    { status: 600 },
    { statusText: 'bad\nline' },
    { statusText: '\u0100' },
    { statusText: 7 },
    { headers: [['x-a', '1']] },
    { headers: new Headers({ 'x-h': 'h' }) },
    { headers: { 'a b': 'x' } },
    { headers: { a: 'x\ny' } },
    { headers: { a: 'nul\0' } },
    { headers: { a: ' padded\t' } },
    { headers: { a: 5 } },
    { headers: { a: '\u0100' } },
    { headers: { [Symbol('s')]: 'x' } },
    { headers: 'x' },
    Object.create({ status: 201 }) as object,
  ];
  for (const init of inits) {
    const what = String(JSON.stringify(init));
    let native: unknown;
    try {
      native = looks(new NativeResponse('b', init as ResponseInit));
    } catch (err) {
      assert.throws(() => new QuickResponse('b', init as ResponseInit), (err as Error).constructor as typeof Error, what);
      continue;
    }
    assert.deepEqual(looks(new QuickResponse('b', init as ResponseInit)), native, what);
  }
});

test('a bare Response\'s headers: one Headers object, built on first use, mutable, and what answerOf sends', async () => {
  const r = new QuickResponse('x', { headers: { 'x-a': '1' } });
  const h = r.headers;
  assert.ok(h instanceof Headers);
  assert.equal(r.headers, h);
  h.set('x-b', '2');
  h.append('set-cookie', 'c=3');
  h.delete('x-a');
  assert.deepEqual(await answerOf(r, CAP), { statusCode: 200, headers: { 'content-type': 'text/plain;charset=UTF-8', 'x-b': '2' }, cookies: ['c=3'], body: 'x', isBase64Encoded: false });
  // The standard's clone copies the headers: changing the copy's leaves the original's alone.
  const o = new QuickResponse('y', { status: 201, headers: { 'x-o': '1' } });
  const c = o.clone();
  c.headers.set('x-o', 'changed');
  assert.equal(o.headers.get('x-o'), '1');
  assert.deepEqual(looks(c), { ...looks(o), headers: [...new Headers({ 'content-type': 'text/plain;charset=UTF-8', 'x-o': 'changed' })] });
  assert.match(inspect(new QuickResponse('z', { status: 202 })), /status: 202/);
  assert.deepEqual(looks(QuickResponse.json({ a: 1 })), looks(NativeResponse.json({ a: 1 })));
  // The statics not overridden are undici's, through the parent chain.
  assert.deepEqual(looks(QuickResponse.error()), looks(NativeResponse.error()));
  assert.deepEqual(looks(QuickResponse.redirect('http://x/', 301)), looks(NativeResponse.redirect('http://x/', 301)));
});

test('answer(): at once for a body in memory, a promise only for a body undici holds; same answers as answerOf', async () => {
  const now = answer(new QuickResponse('now', { headers: { 'content-type': 'text/plain' } }), CAP);
  assert.ok(!(now instanceof Promise));
  assert.deepEqual(now, { statusCode: 200, headers: { 'content-type': 'text/plain' }, cookies: [], body: 'now', isBase64Encoded: false });
  assert.ok(!(answer(new QuickResponse(new Uint8Array([255]), { status: 202 }), CAP) instanceof Promise));
  const later = answer(new QuickResponse(new Blob(['later'])), CAP);
  assert.ok(later instanceof Promise);
  assert.deepEqual(await later, await answerOf(new NativeResponse(new Blob(['later'])), CAP));
  assert.throws(() => answer({ status: 200 }, CAP), InvalidResponseError);
  assert.throws(() => answer(new QuickResponse(new Uint8Array(11)), 10), RangeError);
  await assert.rejects(answer(new QuickResponse(new Blob(['x'.repeat(11)])), 10) as Promise<object>, RangeError);
});
