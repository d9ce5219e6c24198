// HTTP functions through `lamina gateway` and a `lamina worker` on PostgreSQL:
// method, path, query, headers and a binary body forwarded intact; status,
// headers and every Set-Cookie returned intact; keys, CORS and error bodies
// behave as on one node.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { call } from '../helpers/server.js';
import { adminCall, deployFn, startCluster, TOKEN, type TestCluster } from '../helpers/cluster.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const ECHO = `
export async function handler(e) {
  return {
    statusCode: 207,
    headers: { 'content-type': e.headers['content-type'] ?? 'application/octet-stream', 'x-method': e.requestContext.http.method, 'x-path': e.rawPath, 'x-query': e.rawQueryString, 'x-custom': e.headers['x-custom'] ?? '' },
    cookies: ['one=1; Path=/', 'two=2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT'],
    body: e.body ?? '',
    isBase64Encoded: e.isBase64Encoded,
  };
}`;

const FETCH = `export default { async fetch(req, env) { const b = new Uint8Array(await req.arrayBuffer()); return new Response(b, { status: 201, headers: { 'content-type': 'application/octet-stream', 'x-env': env.E } }); } };`;

describe('cluster: HTTP functions through the gateway', () => {
  let c: TestCluster;
  before(async () => {
    // A loaded machine may stall a worker past the harness's 1 s heartbeat timeout; this suite is not about failure detection.
    c = await startCluster({ workers: ['w1'], env: { LAMINA_HEARTBEAT_TIMEOUT_MS: '15000' } });
    await deployFn(c.gateway.url, 'echo', ECHO, { http: { event: 'request' } });
    await deployFn(c.gateway.url, 'fetcher', FETCH, { env: { E: 'x' } });
    await deployFn(c.gateway.url, 'locked', 'export const handler = async () => ({ ok: 1 });', { http: { auth: 'token', cors: { allowOrigins: ['https://a.example'] } } });
    await deployFn(c.gateway.url, 'boom', 'export const handler = async () => { throw new Error("boom"); };');
    await deployFn(c.gateway.url, 'json', 'export const handler = async (e) => e;');
  });
  after(async () => {
    await c?.stop();
  });

  test('request mode: method, path, query, headers and a 1 MB binary body in; status, headers and both cookies out', async () => {
    const data = randomBytes(1024 * 1024);
    const res = await fetch(`${c.gateway.url}/run/echo/x/y?a=1&b=%20`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'x-custom': 'v' }, body: data });
    assert.equal(res.status, 207, res.status === 207 ? '' : await res.text());
    assert.equal(res.headers.get('x-method'), 'PATCH');
    assert.equal(res.headers.get('x-path'), '/x/y');
    assert.equal(res.headers.get('x-query'), 'a=1&b=%20');
    assert.equal(res.headers.get('x-custom'), 'v');
    assert.deepEqual(res.headers.getSetCookie(), ['one=1; Path=/', 'two=2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT']);
    assert.equal(res.headers.get('x-lamina-worker'), 'w1');
    const back = new Uint8Array(await res.arrayBuffer());
    assert.equal(sha(back), sha(data));
  });

  test('fetch handler: a 1 MB binary body round-trips; json mode still refuses invalid JSON', async () => {
    const data = randomBytes(1024 * 1024);
    const res = await fetch(`${c.gateway.url}/run/fetcher`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: data });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('x-env'), 'x');
    assert.equal(sha(new Uint8Array(await res.arrayBuffer())), sha(data));
    const ok = await call(`${c.gateway.url}/run/json`, { method: 'POST', body: '{"a":[1]}' });
    assert.deepEqual(ok.body, { a: [1] });
    const bad = await call(`${c.gateway.url}/run/json`, { method: 'POST', body: '{x' });
    assert.equal(bad.status, 400);
  });

  test('keys, CORS and stack-free error bodies work through the gateway', async () => {
    assert.equal((await call(`${c.gateway.url}/run/locked`)).status, 401);
    const k = await adminCall(c.gateway.url, 'POST', '/keys', JSON.stringify({ functions: ['locked'] }), 'application/json');
    assert.equal(k.status, 201, k.text);
    const ok = await call(`${c.gateway.url}/run/locked`, { headers: { authorization: `Bearer ${k.body.key}`, origin: 'https://a.example' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://a.example');
    assert.equal((await call(`${c.gateway.url}/api/v1/functions`, { headers: { authorization: `Bearer ${k.body.key}` } })).status, 401);
    assert.equal((await adminCall(c.gateway.url, 'DELETE', `/keys/${k.body.id}`)).status, 204);
    assert.equal((await call(`${c.gateway.url}/run/locked`, { headers: { authorization: `Bearer ${k.body.key}` } })).status, 401);
    const anon = await call(`${c.gateway.url}/run/boom`, { method: 'POST' });
    assert.equal(anon.status, 500);
    assert.equal(anon.body.error.stack, undefined);
    const adminView = await call(`${c.gateway.url}/run/boom`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.match(adminView.body.error.stack, /boom/);
  });
});
