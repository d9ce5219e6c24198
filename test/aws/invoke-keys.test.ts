// Invoke keys as SigV4 credentials, through the AWS plugin in process (fastify
// inject): Invoke only, and only of the key's functions. The key store is a
// stub here: keys are wired to the AWS API through GatewayDeps.invokeKeys.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import Fastify from 'fastify';
import { AWS_PREFIX, awsLambdaApi } from '../../src/gateway/aws/plugin.js';
import type { AwsDeps } from '../../src/gateway/aws/types.js';

const fv = (name: string) => ({ name, version: 1, codeHash: 'ab'.repeat(32), manifest: { name, runtime: 'node', entry: 'index.js', handler: 'handler', memoryMb: 128, timeoutMs: 3000, env: {} }, codeDir: '/x', codeEntry: 'index.mjs', sizeBytes: 1, createdAt: new Date().toISOString() });

async function app() {
  const a = Fastify();
  a.removeAllContentTypeParsers(); // as the gateway does: every body arrives raw
  a.addContentTypeParser('*', { parseAs: 'buffer' }, (_r, body, done) => done(null, body));
  const deps = {
    registry: { current: (n: string) => (['a', 'b'].includes(n) ? fv(n) : undefined), list: () => [{ name: 'a' }, { name: 'b' }] },
    versions: { resolve: async () => ({ version: 1 }), awsSettings: async () => ({ role: '', description: '', runtime: '', handler: '' }) },
    worker: { id: 'w', invoke: async (name: string, requestId: string) => ({ outcome: { ok: true, value: { ran: name }, durationMs: 1, logs: '', maxMemoryBytes: 0 }, record: { requestId, version: 1, logs: '' } }) },
    metrics: { observe: () => undefined, rejected: () => undefined },
    token: 'admin-token',
    payloadLimitBytes: 1 << 20,
    deployLimitBytes: 1 << 20,
    checkManifest: () => undefined,
    log: { error: () => undefined },
    invokeKeys: async (id: string) => (id === 'KEYA' ? { secret: 'secret-a', functions: ['a'] } : undefined),
  } as unknown as AwsDeps;
  await a.register(async (x) => awsLambdaApi(x, deps), { prefix: AWS_PREFIX });
  return a;
}

async function send(a: Awaited<ReturnType<typeof app>>, method: string, path: string, id: string, secret: string, body = '') {
  const req = new HttpRequest({ method, protocol: 'http:', hostname: 'localhost', path, query: {}, headers: { host: 'localhost:80', 'content-type': 'application/json' }, body: body || undefined });
  const signed = await new SignatureV4({ credentials: { accessKeyId: id, secretAccessKey: secret }, region: 'us-east-1', service: 'lambda', sha256: Hash.bind(null, 'sha256') }).sign(req);
  return a.inject({ method: method as 'GET', url: path, headers: signed.headers, payload: body || undefined });
}

test('an invoke key may call Invoke on its functions and nothing else', async () => {
  const a = await app();
  try {
    const ok = await send(a, 'POST', '/2015-03-31/functions/a/invocations', 'KEYA', 'secret-a', '{}');
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(JSON.parse(ok.body), { ran: 'a' });
    const other = await send(a, 'POST', '/2015-03-31/functions/b/invocations', 'KEYA', 'secret-a', '{}');
    assert.equal(other.statusCode, 403);
    assert.equal(other.headers['x-amzn-errortype'], 'AccessDeniedException');
    const list = await send(a, 'GET', '/2015-03-31/functions/', 'KEYA', 'secret-a');
    assert.equal(list.statusCode, 403);
    assert.equal(list.headers['x-amzn-errortype'], 'AccessDeniedException');
    const wrong = await send(a, 'POST', '/2015-03-31/functions/a/invocations', 'KEYA', 'secret-b', '{}');
    assert.equal(wrong.statusCode, 403);
    assert.equal(wrong.headers['x-amzn-errortype'], 'InvalidSignatureException');
    // The admin credential may call anything.
    const admin = await send(a, 'POST', '/2015-03-31/functions/b/invocations', 'admin', 'admin-token', '{}');
    assert.equal(admin.statusCode, 200, admin.body);
    const unknownOp = await send(a, 'GET', '/2015-03-31/layers', 'admin', 'admin-token');
    assert.equal(unknownOp.statusCode, 404);
  } finally {
    await a.close();
  }
});
