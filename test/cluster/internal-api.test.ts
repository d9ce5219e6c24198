// The internal worker API under attack, over TLS: a worker given a self-signed
// certificate (made here with openssl) serves HTTPS, the gateway trusts it
// through the configured CA file, calls flow; requests without the cluster
// secret or with a forged one are refused, plain HTTP and untrusted clients get
// nowhere, and hostile bodies get 4xx while the worker keeps serving.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { deployCode } from '../helpers/server.js';
import { SECRET, TOKEN, run, startCluster, type TestCluster, type WorkerProc } from '../helpers/cluster.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-tls-'));
const cert = path.join(dir, 'cert.pem');
const key = path.join(dir, 'key.pem');
let c: TestCluster;
let w: WorkerProc;
let trusted: Agent;

const skip = false;

before(async () => {
  if (skip) return;
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  trusted = new Agent({ connect: { ca: readFileSync(cert) } });
  // The worker serves HTTPS with the certificate; the gateway trusts it as its CA.
  // Generous heartbeat timeouts: these tests attack, they do not measure failure detection.
  c = await startCluster({ workerArgs: ['--tls-cert', cert, '--tls-key', key], gatewayArgs: ['--tls-ca', cert], env: { LAMINA_HEARTBEAT_MS: '300', LAMINA_HEARTBEAT_TIMEOUT_MS: '15000' } });
  w = await c.startWorker('w1');
  await c.waitForUp(['w1']);
  await deployCode({ url: c.gateway.url, token: TOKEN } as never, 'echo', 'export const handler = async (e) => ({ echo: e });');
  // The worker learns of the deploy through the database; a first call through the gateway settles it.
  await run(c.gateway.url, 'echo', {});
});
after(async () => {
  await c?.stop();
  await trusted?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A request straight to the worker's internal API over TLS (trusting the test CA). */
async function toWorker(route: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}) {
  const res = await request(`${w.url}/internal/v1${route}`, { dispatcher: trusted, method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });
  const text = await res.body.text();
  return { status: res.statusCode, text };
}

const auth = { authorization: `Bearer ${SECRET}` };

test('the worker serves HTTPS and the gateway reaches it through the configured CA', { skip }, async () => {
  assert.match(w.url, /^https:\/\//);
  const r = await run(c.gateway.url, 'echo', { n: 1 });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body, { echo: { n: 1 } });
});

test('plain HTTP and clients that do not trust the CA get nowhere', { skip }, async () => {
  const plain = w.url.replace(/^https:/, 'http:');
  await assert.rejects(fetch(`${plain}/internal/v1/ping`, { headers: auth }).then(async (r) => {
    if (r.status === 200) return r.text();
    throw new Error(`refused with ${r.status}`);
  }));
  await assert.rejects(request(`${w.url}/internal/v1/ping`, { headers: auth }), /certificate/i);
});

test('requests without the cluster secret, or with a forged one, are refused', { skip }, async () => {
  const forged: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-secret' }, { authorization: `Basic ${Buffer.from(`x:${SECRET}`).toString('base64')}` }, { authorization: `Bearer ${SECRET}x` }, { authorization: TOKEN }];
  for (const headers of forged) {
    for (const [method, route] of [['GET', '/ping'], ['GET', '/stats'], ['POST', '/invoke/echo'], ['POST', '/flush'], ['GET', '/instances/echo']] as const) {
      const r = await toWorker(route, { method, headers, body: method === 'POST' ? '{}' : undefined });
      assert.equal(r.status, 401, `${method} ${route} with ${JSON.stringify(headers)}: ${r.status} ${r.text}`);
    }
  }
  // The gateway's membership routes too: a forged worker cannot register.
  const reg = await fetch(`${c.gateway.url}/internal/v1/workers/register`, { method: 'POST', headers: { authorization: 'Bearer forged', 'content-type': 'application/json' }, body: JSON.stringify({ id: 'evil', url: 'http://127.0.0.1:1', boot: 'x', info: {}, stats: {} }) });
  assert.equal(reg.status, 401);
});

test('hostile bodies get a 4xx and the worker keeps serving', { skip }, async () => {
  const post = (route: string, body: string | Buffer) => toWorker(route, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
  assert.equal((await post('/invoke/echo', '{"unterminated": ')).status, 400);
  assert.equal((await post('/invoke/%E0%A4%A', '{}')).status, 400, 'bad percent-encoding');
  assert.equal((await post('/invoke/no-such-fn', '{}')).status, 404);
  const big = await post('/invoke/echo', Buffer.alloc(32 * 1024 * 1024, 0x20)).catch((err: Error) => ({ status: 413, text: err.message }));
  assert.equal(big.status, 413, big.text);
  const nested = await post('/invoke/echo', '['.repeat(100_000) + ']'.repeat(100_000));
  // Either run (an array is a valid event) or refused (a nesting limit): never a crash.
  assert.ok([200, 400, 413, 502].includes(nested.status), `deeply nested event: ${nested.status} ${nested.text.slice(0, 200)}`);
  // Still alive and serving.
  const ping = await toWorker('/ping', { headers: auth });
  assert.equal(ping.status, 200, ping.text);
  const r = await run(c.gateway.url, 'echo', { after: true });
  assert.equal(r.status, 200, r.text);
  assert.equal(w.proc.exitCode, null);
});
