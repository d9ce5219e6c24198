// Who may call, and what they learn: invoke keys for "auth": "token"
// functions, CORS, no stack in anonymous error bodies, and InvalidResponse for
// every malformed answer (on every tier).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CLI, admin, call, deployCode, invoke, startServer, testTiers, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);

describe('invoke keys and auth: "token"', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ tier: 'process' });
    await deployCode(s, 'private', 'export const handler = async (e) => ({ ok: true, sawAuth: e.headers?.authorization ?? null });', { http: { auth: 'token', event: 'request' } });
    await deployCode(s, 'other', 'export const handler = async () => "other";', { http: { auth: 'token' } });
    await deployCode(s, 'open', 'export const handler = async (e) => ({ auth: e.headers.authorization ?? null });', { http: { event: 'request' } });
  });
  after(async () => {
    await s.stop();
  });

  test('401 without a key, with a wrong key, or with a malformed header', async () => {
    for (const authorization of [undefined, 'Bearer nope', 'Bearer lk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'Basic abc']) {
      const r = await call(`${s.url}/run/private`, { headers: authorization ? { authorization } : {} });
      assert.equal(r.status, 401, `${authorization}: ${r.text}`);
      assert.equal(r.body.error.type, 'Unauthorized');
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="lamina"');
    }
  });

  test('a key works for its functions only, is never shown again, never reaches the function, and stops at once when revoked', async () => {
    const created = await admin(s, 'POST', '/keys', JSON.stringify({ functions: ['private'] }), 'application/json');
    assert.equal(created.status, 201, created.text);
    const { id, key, functions, createdAt } = created.body;
    assert.match(key, /^lk_[a-z0-9]{12}_/);
    assert.deepEqual(functions, ['private']);
    assert.ok(Date.parse(createdAt));
    const ok = await call(`${s.url}/run/private`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body, { ok: true, sawAuth: null });
    const wrongFn = await call(`${s.url}/run/other`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(wrongFn.status, 401);
    const listed = await admin(s, 'GET', '/keys');
    assert.equal(listed.status, 200);
    const mine = listed.body.keys.find((k: { id: string }) => k.id === id);
    assert.deepEqual(mine, { id, functions: ['private'], createdAt });
    assert.ok(!listed.text.includes(key.slice(16)), 'the key is not listed');
    // The admin token works too, and is not passed on to the function's code either.
    const byAdmin = await call(`${s.url}/run/private`, { headers: { authorization: `Bearer ${s.token}` } });
    assert.deepEqual(byAdmin.body, { ok: true, sawAuth: null });
    const open = await call(`${s.url}/run/open`, { headers: { authorization: `Bearer ${s.token}` } });
    assert.deepEqual(open.body, { auth: null });
    const appAuth = await call(`${s.url}/run/open`, { headers: { authorization: 'Bearer app-own' } });
    assert.deepEqual(appAuth.body, { auth: 'Bearer app-own' });

    const del = await admin(s, 'DELETE', `/keys/${id}`);
    assert.equal(del.status, 204);
    const revoked = await call(`${s.url}/run/private`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(revoked.status, 401);
    assert.equal((await admin(s, 'DELETE', `/keys/${id}`)).status, 404);
  });

  test('"*" keys call every function; an invoke key never opens the admin API', async () => {
    const { key } = (await admin(s, 'POST', '/keys', JSON.stringify({ functions: ['*'] }), 'application/json')).body;
    assert.equal((await call(`${s.url}/run/private`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
    assert.equal((await call(`${s.url}/run/other`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
    for (const [method, route] of [['GET', '/functions'], ['GET', '/keys'], ['POST', '/keys'], ['GET', '/invocations']]) {
      const r = await call(`${s.url}/api/v1${route}`, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{"functions":["*"]}' } : {}) });
      assert.equal(r.status, 401, `${method} ${route}`);
    }
  });

  test('bad key requests are refused with a clear message', async () => {
    for (const body of ['', '{', '{"functions":[]}', '{"functions":"a"}', '{"functions":["bad name!"]}', '{"functions":["*","a"]}', '{"functions":[1]}']) {
      const r = await admin(s, 'POST', '/keys', body, 'application/json');
      assert.equal(r.status, 400, `${body}: ${r.text}`);
      assert.equal(r.body.error.type, 'BadRequest');
    }
  });

  test('lamina keys create|ls|rm and lamina invoke --key', async () => {
    const env = { ...process.env, LAMINA_URL: s.url, LAMINA_TOKEN: s.token };
    const created = await run(process.execPath, [CLI, 'keys', 'create', 'private'], { env });
    const key = created.stdout.trim();
    assert.match(key, /^lk_/);
    const id = key.split('_')[1]!;
    const inv = await run(process.execPath, [CLI, 'invoke', 'private', '--key', key, '-X', 'GET'], { env });
    assert.match(inv.stdout, /"ok":true/);
    const ls = await run(process.execPath, [CLI, 'keys', 'ls'], { env });
    assert.match(ls.stdout, new RegExp(`${id}\\s+private`));
    await run(process.execPath, [CLI, 'keys', 'rm', id], { env });
    await assert.rejects(run(process.execPath, [CLI, 'invoke', 'private', '--key', key, '-X', 'GET'], { env }), /Unauthorized/);
  });
});

describe('CORS', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ tier: 'process' });
    await deployCode(s, 'api', 'export const handler = async () => ({ hi: 1 });', {
      http: { methods: ['GET', 'POST'], cors: { allowOrigins: ['https://app.example'], allowHeaders: ['content-type', 'x-who'], exposeHeaders: ['x-lamina-request-id'], maxAge: 120 } },
    });
  });
  after(async () => {
    await s.stop();
  });

  test('a preflight from an allowed origin is answered by the gateway, without a call', async () => {
    const r = await fetch(`${s.url}/run/api`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'Content-Type, X-Who' } });
    assert.equal(r.status, 204);
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(r.headers.get('access-control-allow-methods')!, /POST/);
    assert.equal(r.headers.get('access-control-allow-headers'), 'content-type, x-who');
    assert.equal(r.headers.get('access-control-max-age'), '120');
    const calls = await admin(s, 'GET', '/invocations?function=api');
    assert.equal(calls.body.invocations.length, 0, 'no call was made');
  });

  test('allowed origins get allow-origin on every answer, errors included', async () => {
    const ok = await call(`${s.url}/run/api`, { headers: { origin: 'https://app.example' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.equal(ok.headers.get('access-control-expose-headers'), 'x-lamina-request-id');
    const refused = await call(`${s.url}/run/api`, { method: 'DELETE', headers: { origin: 'https://app.example' } });
    assert.equal(refused.status, 405);
    assert.equal(refused.headers.get('access-control-allow-origin'), 'https://app.example');
  });

  test('other origins get nothing: no allow-origin on preflights or answers', async () => {
    const pre = await fetch(`${s.url}/run/api`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(pre.headers.get('access-control-allow-origin'), null);
    assert.equal(pre.headers.get('access-control-allow-methods'), null);
    const badHeader = await fetch(`${s.url}/run/api`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-secret' } });
    assert.equal(badHeader.headers.get('access-control-allow-origin'), null);
    const r = await call(`${s.url}/run/api`, { headers: { origin: 'https://evil.example' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), null);
  });
});

const INVALID: [string, string, RegExp][] = [
  ['fractional status', 'return { statusCode: 200.5, body: "x" }', /statusCode must be an integer from 100 to 599 \(got the number 200\.5\)/],
  ['status out of range', 'return { statusCode: 700 }', /statusCode must be an integer/],
  ['informational status', 'return { statusCode: 101 }', /statusCode/],
  ['string status', 'return { statusCode: "200" }', /statusCode must be an integer/],
  ['header not a string', 'return { statusCode: 200, headers: { "x-n": 5 } }', /the value of header "x-n" must be a string \(got the number 5\)/],
  ['headers not an object', 'return { statusCode: 200, headers: ["a"] }', /headers must be an object/],
  ['header splitting', 'return { statusCode: 200, headers: { "x-a": "1\\r\\nset-cookie: evil=1" } }', /control character/],
  ['bad header name', 'return { statusCode: 200, headers: { "bad name": "1" } }', /not a valid header name/],
  ['cookie not a string', 'return { statusCode: 200, cookies: [1] }', /cookies\[0\] must be a string/],
  ['body not a string', 'return { statusCode: 200, body: { a: 1 } }', /body must be a string/],
  ['isBase64Encoded not boolean', 'return { statusCode: 200, body: "", isBase64Encoded: "yes" }', /isBase64Encoded must be true or false/],
  ['base64 flag on non-base64', 'return { statusCode: 200, body: "not base64!", isBase64Encoded: true }', /not base64/],
];

for (const tier of testTiers()) {
  describe(`InvalidResponse and error bodies [${tier}]`, () => {
    let s: TestServer;
    const extra = tier === 'isolate' ? { sandbox: 'isolate' } : {};
    before(async () => {
      s = await startServer({ tier });
      const cases = INVALID.map(([, code], i) => `if (e.rawPath === '/${i}') { ${code}; }`).join('\n');
      await deployCode(s, 'bad', `export async function handler(e) {\n${cases}\nreturn { statusCode: 204 };\n}`, { ...extra, http: { event: 'request' } });
      await deployCode(s, 'badfetch', 'export default { async fetch(req) { const p = new URL(req.url).pathname; if (p.endsWith("/undef")) return undefined; if (p.endsWith("/throw")) throw new Error("boom in fetch"); return { status: 200, body: "not a Response" }; } };', extra);
      await deployCode(s, 'thrower', 'export const handler = async () => { throw new Error("secret detail in the stack"); };', extra);
      await deployCode(s, 'rthrower', 'export const handler = async () => { throw new Error("request mode boom"); };', { ...extra, http: { event: 'request' } });
    });
    after(async () => {
      await s.stop();
    });

    test('every malformed response object is 502 InvalidResponse naming what was wrong; the server keeps serving', async () => {
      for (const [i, [what, , message]] of INVALID.entries()) {
        const r = await call(`${s.url}/run/bad/${i}`);
        assert.equal(r.status, 502, `${what}: ${r.text}`);
        assert.equal(r.body.error.type, 'InvalidResponse', what);
        assert.match(r.body.error.message, message, what);
        assert.equal(r.headers.get('set-cookie'), null, what);
      }
      const fine = await call(`${s.url}/run/bad/ok`);
      assert.equal(fine.status, 204);
      const rec = await admin(s, 'GET', '/invocations?function=bad&limit=100');
      assert.ok(rec.body.invocations.some((x: { status: string }) => x.status === 'InvalidResponse'));
    });

    test('a fetch handler that returns something other than a Response is 502 InvalidResponse', async () => {
      for (const [p, got] of [['/obj', /got an object \(Object\)/], ['/undef', /got undefined/]] as const) {
        const r = await call(`${s.url}/run/badfetch${p}`);
        assert.equal(r.status, 502, r.text);
        assert.equal(r.body.error.type, 'InvalidResponse');
        assert.match(r.body.error.message, /must return a Response/);
        assert.match(r.body.error.message, got);
      }
    });

    test('no stack to anonymous callers in any mode; the admin token sees it; the record keeps it', async () => {
      for (const path of ['thrower', 'rthrower', 'badfetch/throw']) {
        const anon = await call(`${s.url}/run/${path}`, { method: 'POST', body: '{}' });
        assert.equal(anon.status, 500, anon.text);
        assert.equal(anon.body.error.type, 'HandlerError');
        assert.ok(anon.body.error.requestId);
        assert.equal(anon.body.error.stack, undefined, `${path}: ${anon.text}`);
        assert.ok(!anon.text.includes('    at '), anon.text);
        const withToken = await call(`${s.url}/run/${path}`, { method: 'POST', body: '{}', headers: { authorization: `Bearer ${s.token}` } });
        assert.equal(withToken.status, 500);
        assert.match(withToken.body.error.stack, /at /);
      }
      const anon = await invoke(s, 'thrower', {});
      const rec = await admin(s, 'GET', `/invocations/${anon.body.error.requestId}`);
      assert.match(rec.body.logs ?? '', /secret detail in the stack/);
    });
  });
}
