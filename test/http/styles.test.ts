// HTTP functions end to end, on every tier: request mode (the function-URL 2.0
// event and response objects) and fetch handlers (Request in, Response out),
// binary bodies compared by sha256, cookies, HEAD, env and ctx.waitUntil.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { admin, call, deploy, deployCode, makeFunction, sleep, startServer, testTiers, type TestServer } from '../helpers/server.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const REQUEST_FN = `
export async function handler(event) {
  if (event.rawPath === '/plain') return { plain: true, q: event.queryStringParameters ?? null };
  if (event.rawPath === '/echo') {
    return {
      statusCode: 201,
      headers: { 'content-type': event.headers['content-type'] ?? 'application/octet-stream', 'x-echo': 'yes' },
      body: event.body ?? '',
      isBase64Encoded: event.isBase64Encoded,
    };
  }
  if (event.rawPath === '/cookies') {
    return { statusCode: 200, headers: { 'content-type': 'text/plain' }, cookies: ['a=1; Path=/', 'b=2; Path=/; HttpOnly'], body: 'set' };
  }
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) };
}`;

const FETCH_FN = `
let background = 0;
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname.endsWith('/echo')) {
      const bytes = await request.arrayBuffer();
      return new Response(bytes, { status: 200, headers: { 'content-type': request.headers.get('content-type') ?? 'application/octet-stream' } });
    }
    if (url.pathname.endsWith('/cookies')) {
      const h = new Headers({ 'content-type': 'text/plain' });
      h.append('set-cookie', 'a=1; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT');
      h.append('set-cookie', 'b=2; Path=/');
      return new Response('cookies', { headers: h });
    }
    if (url.pathname.endsWith('/later')) {
      ctx.waitUntil(new Promise((r) => setTimeout(r, 300)).then(() => { background++; console.log('background done'); }));
      return new Response('answered');
    }
    if (url.pathname.endsWith('/background')) return Response.json({ background });
    if (url.pathname.endsWith('/form')) {
      const text = await request.text();
      return Response.json({ method: request.method, text, type: request.headers.get('content-type') });
    }
    return Response.json({ url: request.url, method: request.method, who: env.WHO, q: url.searchParams.get('x') }, { status: 202, headers: { 'x-kind': 'fetch' } });
  },
};`;

for (const tier of testTiers()) {
  describe(`HTTP functions [${tier}]`, () => {
    let s: TestServer;
    const extra = tier === 'isolate' ? { sandbox: 'isolate' } : {};
    before(async () => {
      s = await startServer({ tier });
      await deployCode(s, 'req', REQUEST_FN, { ...extra, http: { event: 'request' } });
      await deployCode(s, 'web', FETCH_FN, { ...extra, env: { WHO: 'lamina' } });
    });
    after(async () => {
      await s.stop();
    });

    test('request mode: the function-URL 2.0 event', async () => {
      const r = await call(`${s.url}/run/req/some/path?x=1&x=2&y=z`, { method: 'PUT', headers: { 'x-one': 'a', cookie: 'c1=v1; c2=v2', 'content-type': 'text/plain' }, body: 'hello' });
      assert.equal(r.status, 200, r.text);
      const e = r.body;
      assert.equal(e.version, '2.0');
      assert.equal(e.routeKey, '$default');
      assert.equal(e.rawPath, '/some/path');
      assert.equal(e.rawQueryString, 'x=1&x=2&y=z');
      assert.deepEqual(e.queryStringParameters, { x: '1,2', y: 'z' });
      assert.equal(e.headers['x-one'], 'a');
      assert.deepEqual(e.cookies, ['c1=v1', 'c2=v2']);
      assert.equal(e.requestContext.http.method, 'PUT');
      assert.equal(e.requestContext.http.path, '/some/path');
      assert.equal(e.requestContext.apiId, 'req');
      assert.equal(e.requestContext.requestId, r.headers.get('x-lamina-request-id'));
      assert.equal(typeof e.requestContext.timeEpoch, 'number');
      assert.equal(e.body, 'hello');
      assert.equal(e.isBase64Encoded, false);
      const root = await call(`${s.url}/run/req`);
      assert.equal(root.body.rawPath, '/');
      assert.equal(root.body.body, undefined);
      assert.equal(root.body.queryStringParameters, undefined);
    });

    test('request mode: a plain value is 200 JSON; a response object sets status and headers', async () => {
      const r = await call(`${s.url}/run/req/plain?a=b`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type')!, /application\/json/);
      assert.deepEqual(r.body, { plain: true, q: { a: 'b' } });
      const e = await call(`${s.url}/run/req/echo`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=Ada&x=1' });
      assert.equal(e.status, 201);
      assert.equal(e.headers.get('x-echo'), 'yes');
      assert.equal(e.text, 'name=Ada&x=1');
    });

    for (const fn of ['req', 'web']) {
      test(`${fn}: a 1 MB binary body round-trips intact (sha256)`, async () => {
        const data = randomBytes(1024 * 1024);
        const res = await fetch(`${s.url}/run/${fn}/echo`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: data });
        assert.equal(res.status, fn === 'req' ? 201 : 200);
        const back = new Uint8Array(await res.arrayBuffer());
        assert.equal(back.length, data.length);
        assert.equal(sha(back), sha(data));
        assert.equal(res.headers.get('content-type'), 'application/octet-stream');
      });

      test(`${fn}: two Set-Cookie headers come back apart`, async () => {
        const res = await fetch(`${s.url}/run/${fn}/cookies`);
        assert.equal(res.status, 200);
        const cookies = res.headers.getSetCookie();
        assert.equal(cookies.length, 2, JSON.stringify(cookies));
        assert.match(cookies[0]!, /^a=1; Path=\//);
        assert.match(cookies[1]!, /^b=2; Path=\//);
      });

      test(`${fn}: HEAD gets the headers without a body`, async () => {
        const res = await fetch(`${s.url}/run/${fn}/cookies`, { method: 'HEAD' });
        assert.equal(res.status, 200);
        assert.equal(res.headers.getSetCookie().length, 2);
        assert.equal((await res.arrayBuffer()).byteLength, 0);
      });
    }

    test('fetch: Request in (the URL the client asked for), Response out, env bound', async () => {
      const r = await call(`${s.url}/run/web/a/b?x=7`, { method: 'DELETE' });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.headers.get('x-kind'), 'fetch');
      assert.equal(r.body.method, 'DELETE');
      assert.equal(r.body.who, 'lamina');
      assert.equal(r.body.q, '7');
      assert.equal(new URL(r.body.url).pathname, '/run/web/a/b');
      assert.equal(new URL(r.body.url).search, '?x=7');
    });

    test('fetch: a module detected as a fetch handler takes any body, whatever http.event says', async () => {
      const r = await call(`${s.url}/run/web/form`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'not=json&x=1' });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { method: 'POST', text: 'not=json&x=1', type: 'application/x-www-form-urlencoded' });
    });

    test('fetch: ctx.waitUntil work finishes after the answer, inside the call, and is billed', async () => {
      const r = await call(`${s.url}/run/web/later`);
      assert.equal(r.status, 200);
      assert.equal(r.text, 'answered');
      const id = r.headers.get('x-lamina-request-id')!;
      // The answer did not wait for the background work (300 ms)...
      assert.ok(Number(r.headers.get('x-lamina-duration-ms')) < 300, `answered after ${r.headers.get('x-lamina-duration-ms')} ms`);
      // ...which then ran to its end, and the record bills it.
      let rec: { status: number; body: { durationMs?: number; logs?: string } } | undefined;
      for (let i = 0; i < 100; i++) {
        rec = await admin(s, 'GET', `/invocations/${id}`);
        if (rec.status === 200 && (rec.body.durationMs ?? 0) >= 300) break;
        await sleep(100);
      }
      assert.equal(rec!.status, 200);
      assert.ok(rec!.body.durationMs! >= 300, `billed ${rec!.body.durationMs} ms`);
      assert.match(rec!.body.logs!, /background done/);
      const b = await call(`${s.url}/run/web/background`);
      assert.equal(b.body.background, 1);
    });

    test('a call pinned to an older version (name:1) gets its request as the current version would', async () => {
      // Version 2 of each, so that version 1 is run by a pinned runner of its own.
      await deployCode(s, 'req-pin', REQUEST_FN, { ...extra, http: { event: 'request' } });
      await deployCode(s, 'req-pin', REQUEST_FN.replace("'/plain'", "'/plain2'"), { ...extra, http: { event: 'request' } });
      await deployCode(s, 'web-pin', FETCH_FN, { ...extra, env: { WHO: 'one' } });
      await deployCode(s, 'web-pin', FETCH_FN, { ...extra, env: { WHO: 'two' } });
      const r = await call(`${s.url}/run/req-pin:1/plain?a=b`, { method: 'PUT', body: 'x' });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { plain: true, q: { a: 'b' } });
      assert.equal(r.headers.get('x-lamina-version'), '1');
      const f = await call(`${s.url}/run/web-pin:1/some/where?x=7`, { method: 'GET' });
      assert.equal(f.status, 202, f.text);
      assert.deepEqual(f.body, { url: `${s.url}/run/web-pin:1/some/where?x=7`, method: 'GET', who: 'one', q: '7' });
      const echo = randomBytes(4096);
      const e = await fetch(`${s.url}/run/web-pin:1/echo`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: echo });
      assert.equal(e.status, 200);
      assert.equal(sha(new Uint8Array(await e.arrayBuffer())), sha(echo));
    });

    test('json mode is unchanged: invalid JSON is still 400 for an event handler', async () => {
      await deployCode(s, 'plainjson', 'export const handler = async (e) => ({ got: e });', extra);
      const ok = await call(`${s.url}/run/plainjson`, { method: 'POST', body: '{"a":1}' });
      assert.deepEqual(ok.body, { got: { a: 1 } });
      const bad = await call(`${s.url}/run/plainjson`, { method: 'POST', body: '{nope' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.type, 'BadRequest');
      const head = await fetch(`${s.url}/run/plainjson`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal((await head.arrayBuffer()).byteLength, 0);
    });
  });
}

describe('HTTP functions: Python request mode [container]', { skip: !testTiers().includes('container') && 'container tier not under test' }, () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ tier: 'container' });
  });
  after(async () => {
    await s.stop();
  });

  test('a Python handler gets the same 2.0 event and answers a response object', async () => {
    const code = [
      'import base64',
      'def handler(event, context):',
      '    body = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event.get("body", "").encode()',
      '    return {"statusCode": 200, "headers": {"content-type": "application/octet-stream", "x-path": event["rawPath"]},',
      '            "cookies": ["p=1", "q=2"], "body": base64.b64encode(body[::-1]).decode(), "isBase64Encoded": True}',
      '',
    ].join('\n');
    const dir = makeFunction({ 'main.py': code }, { name: 'pyreq', runtime: 'python', http: { event: 'request' } }, 'pyreq');
    await deploy(s, dir, 'pyreq');
    const data = randomBytes(256 * 1024);
    const res = await fetch(`${s.url}/run/pyreq/x/y`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: data });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('x-path'), '/x/y');
    assert.deepEqual(res.headers.getSetCookie(), ['p=1', 'q=2']);
    assert.equal(sha(new Uint8Array(await res.arrayBuffer())), sha(Buffer.from(data).reverse()));
  });
});
