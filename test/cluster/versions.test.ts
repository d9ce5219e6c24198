// Versions, aliases and the AWS Lambda API through `lamina gateway` and a
// `lamina worker` on PostgreSQL: a call pinned to a stored version (name:1, an
// alias) runs that version on the worker, HTTP functions included; the real AWS
// SDK works against the gateway (SigV4 checked, AWS's errors); and the worker's
// internal API refuses a malformed pin or trigger.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CreateAliasCommand, CreateFunctionCommand, InvokeCommand, PublishVersionCommand, UpdateFunctionCodeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { call, type TestServer } from '../helpers/server.js';
import { deployFn, SECRET, startCluster, TOKEN, type TestCluster } from '../helpers/cluster.js';
import { lambdaClient, refused, zipOf } from '../aws/helpers.js';

const decode = (p: Uint8Array | undefined) => JSON.parse(Buffer.from(p ?? []).toString('utf8') || 'null');
const VERSIONED = (v: string) => `exports.handler = async (event, context) => ({ v: ${JSON.stringify(v)}, version: context.functionVersion });`;
const REQUEST = (v: string) => `export async function handler(e) { return { statusCode: 201, headers: { 'x-v': ${JSON.stringify(v)} }, body: e.requestContext.http.method + ' ' + e.rawPath + '?' + e.rawQueryString }; }`;

describe('cluster: versions, aliases and the AWS Lambda API through the gateway', () => {
  let c: TestCluster;
  let aws: LambdaClient;
  before(async () => {
    // A loaded machine may stall a worker past the harness's heartbeat timeout; this suite is not about failure detection.
    c = await startCluster({ workers: ['w1'], env: { LAMINA_HEARTBEAT_TIMEOUT_MS: '15000' } });
    aws = lambdaClient({ url: c.gateway.url, token: TOKEN } as TestServer);
  });
  after(async () => {
    aws?.destroy();
    await c?.stop();
  });

  test('the AWS SDK creates, publishes, aliases and invokes; pinned calls run their version on the worker', async () => {
    await aws.send(new CreateFunctionCommand({ FunctionName: 'rel', Runtime: 'nodejs20.x', Role: 'r', Handler: 'index.handler', Code: { ZipFile: zipOf({ 'index.js': VERSIONED('a') }) } }));
    const v1 = await aws.send(new PublishVersionCommand({ FunctionName: 'rel' }));
    await aws.send(new UpdateFunctionCodeCommand({ FunctionName: 'rel', ZipFile: zipOf({ 'index.js': VERSIONED('b') }) }));
    await aws.send(new CreateAliasCommand({ FunctionName: 'rel', Name: 'live', FunctionVersion: v1.Version }));

    const current = await aws.send(new InvokeCommand({ FunctionName: 'rel', LogType: 'Tail' }));
    assert.equal(decode(current.Payload).v, 'b');
    assert.equal(current.ExecutedVersion, '$LATEST');
    assert.match(Buffer.from(current.LogResult ?? '', 'base64').toString('utf8'), /REPORT RequestId: \S+\tDuration: /);
    const live = await aws.send(new InvokeCommand({ FunctionName: 'rel:live' }));
    assert.deepEqual(decode(live.Payload), { v: 'a', version: Number(v1.Version) });
    assert.equal(live.ExecutedVersion, v1.Version);

    // The same through /run: the qualifier names the version, and the answer says which ran.
    const pinned = await call(`${c.gateway.url}/run/rel:${v1.Version}`, { method: 'POST', body: '{}' });
    assert.equal(pinned.status, 200, pinned.text);
    assert.equal(pinned.body.v, 'a');
    assert.equal(pinned.headers.get('x-lamina-version'), v1.Version);
    assert.equal((await call(`${c.gateway.url}/run/rel:live`, { method: 'POST' })).body.v, 'a');
    assert.equal((await call(`${c.gateway.url}/run/rel`, { method: 'POST' })).body.v, 'b');
    assert.equal((await call(`${c.gateway.url}/run/rel:99`, { method: 'POST' })).status, 404);
    await refused(aws.send(new InvokeCommand({ FunctionName: 'rel:99' })), 'ResourceNotFoundException', 404);

    // An Event call keeps its qualifier in the shared queue: version 1 runs, whatever is current.
    const ev = await aws.send(new InvokeCommand({ FunctionName: 'rel', Qualifier: 'live', InvocationType: 'Event' }));
    assert.equal(ev.StatusCode, 202);
    let done: any;
    for (let i = 0; i < 300 && !(done && !['Queued', 'Running'].includes(done.status)); i++) {
      if (i) await new Promise((r) => setTimeout(r, 100));
      done = (await call(`${c.gateway.url}/api/v1/invocations/${ev.$metadata.requestId}`, { headers: { authorization: `Bearer ${TOKEN}` } })).body;
    }
    assert.equal(done?.status, 'Success', JSON.stringify(done));
    assert.deepEqual(done.result, { v: 'a', version: Number(v1.Version) });

    // The SDK's call is recorded as an AWS one, by the worker that ran it.
    const id = live.$metadata.requestId!;
    const rec = await call(`${c.gateway.url}/api/v1/invocations/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(rec.status, 200, rec.text);
    assert.equal(rec.body.trigger, 'aws');
    assert.equal(rec.body.version, Number(v1.Version));
    assert.equal(rec.body.worker, 'w1');
  });

  test('an async event pinned to a version whose code the worker never had fetches it and runs it', async () => {
    // Never called: the worker holds no code of either version (it fetches ahead only for functions warm there).
    await deployFn(c.gateway.url, 'cold', VERSIONED('x').replace('exports.handler =', 'export const handler ='));
    await deployFn(c.gateway.url, 'cold', VERSIONED('y').replace('exports.handler =', 'export const handler ='));
    const r = await fetch(`${c.gateway.url}/run/cold:1`, { method: 'POST', body: '{}', headers: { 'x-lamina-invocation-type': 'Event' } });
    assert.equal(r.status, 202);
    const { requestId } = (await r.json()) as { requestId: string };
    let done: any;
    for (let i = 0; i < 300 && !(done && !['Queued', 'Running'].includes(done.status)); i++) {
      if (i) await new Promise((res) => setTimeout(res, 100));
      done = (await call(`${c.gateway.url}/api/v1/invocations/${requestId}`, { headers: { authorization: `Bearer ${TOKEN}` } })).body;
    }
    assert.equal(done?.status, 'Success', JSON.stringify(done));
    assert.deepEqual(done.result, { v: 'x', version: 1 });
  });

  test('an HTTP function pinned to an older version gets its request intact', async () => {
    await deployFn(c.gateway.url, 'web', REQUEST('one'), { http: { event: 'request' } });
    await deployFn(c.gateway.url, 'web', REQUEST('two'), { http: { event: 'request' } });
    const old = await call(`${c.gateway.url}/run/web:1/a/b?x=1`, { method: 'PUT', body: 'hi' });
    assert.equal(old.status, 201, old.text);
    assert.equal(old.headers.get('x-v'), 'one');
    assert.equal(old.text, 'PUT /a/b?x=1');
    const now = await call(`${c.gateway.url}/run/web/c`, { method: 'GET' });
    assert.equal(now.headers.get('x-v'), 'two');
    assert.equal(now.text, 'GET /c?');
  });

  test('rollback through the gateway makes an older version current again on the worker', async () => {
    const r = await call(`${c.gateway.url}/api/v1/functions/web/rollback`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.from, 1);
    const now = await call(`${c.gateway.url}/run/web/d`, { method: 'GET' });
    assert.equal(now.headers.get('x-v'), 'one');
    assert.equal(now.headers.get('x-lamina-version'), String(r.body.version));
  });

  test('SigV4 against the gateway: a wrong secret is refused with 403', async () => {
    const bad = lambdaClient({ url: c.gateway.url, token: 'not-the-token' } as TestServer);
    try {
      await refused(bad.send(new InvokeCommand({ FunctionName: 'rel' })), 'InvalidSignatureException', 403);
    } finally {
      bad.destroy();
    }
  });

  test("the worker's internal API refuses a malformed pin or trigger", async () => {
    const w = c.workers.get('w1')!;
    const send = (headers: Record<string, string>) =>
      call(`${w.url}/internal/v1/invoke/rel`, { method: 'POST', headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json', ...headers }, body: '{}' });
    for (const pin of ['x', '0', '-1', '1.5']) {
      const r = await send({ 'x-lamina-pinned-version': pin });
      assert.equal(r.status, 400, `${pin}: ${r.text}`);
      assert.match(r.body.error.message, /x-lamina-pinned-version must be a version number/);
    }
    const t = await send({ 'x-lamina-trigger': 'bogus' });
    assert.equal(t.status, 400, t.text);
    assert.match(t.body.error.message, /x-lamina-trigger must be one of/);
    const missing = await send({ 'x-lamina-pinned-version': '77' });
    assert.equal(missing.status, 404, missing.text);
    // A good pin is served.
    const ok = await send({ 'x-lamina-pinned-version': '1', 'x-lamina-trigger': 'event' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(JSON.parse(ok.text).result.outcome.value.v, 'a');
  });
});
