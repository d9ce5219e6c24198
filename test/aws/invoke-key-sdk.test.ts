// An invoke key as AWS credentials against a real `lamina up`, through the real
// SDK: access key id = the key's id, secret = the key. The database keeps only
// the key's hash; the server recomputes the key from its pepper to check the
// signature. Invoke of the key's function works; another function, the admin
// operations and a revoked key are refused.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { GetFunctionCommand, InvokeCommand } from '@aws-sdk/client-lambda';
import { admin, deployCode, startServer, type TestServer } from '../helpers/server.js';
import { lambdaClient } from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer({ tier: 'process' });
  await deployCode(s, 'mine', 'export const handler = async (e) => ({ mine: e });');
  await deployCode(s, 'theirs', 'export const handler = async () => ({ theirs: true });');
});
after(async () => {
  await s?.stop();
});

async function refusedWith(p: Promise<unknown>, status: number): Promise<string> {
  try {
    await p;
  } catch (err) {
    const e = err as Error & { $metadata: { httpStatusCode?: number } };
    assert.equal(e.$metadata.httpStatusCode, status, `${e.name}: ${e.message}`);
    return e.name;
  }
  assert.fail(`expected HTTP ${status}`);
}

test('an invoke key signs AWS calls: Invoke of its function only, and not after revocation', async () => {
  const created = await admin(s, 'POST', '/keys', JSON.stringify({ functions: ['mine'] }), 'application/json');
  assert.equal(created.status, 201, created.text);
  const { id, key } = created.body as { id: string; key: string };
  // The pepper lives beside the token, readable by root only.
  assert.equal(statSync(path.join(s.dataDir, 'keys.secret')).mode & 0o077, 0);

  const client = lambdaClient(s, { id, secret: key });
  const out = await client.send(new InvokeCommand({ FunctionName: 'mine', Payload: Buffer.from('{"n":1}') }));
  assert.deepEqual(JSON.parse(Buffer.from(out.Payload!).toString()), { mine: { n: 1 } });

  assert.equal(await refusedWith(client.send(new InvokeCommand({ FunctionName: 'theirs' })), 403), 'AccessDeniedException');
  await refusedWith(client.send(new GetFunctionCommand({ FunctionName: 'mine' })), 403);
  // A wrong secret for the right id is a bad signature.
  await refusedWith(lambdaClient(s, { id, secret: key.slice(0, -2) + 'xx' }).send(new InvokeCommand({ FunctionName: 'mine' })), 403);

  const del = await admin(s, 'DELETE', `/keys/${id}`);
  assert.ok(del.status === 200 || del.status === 204, del.text);
  await refusedWith(client.send(new InvokeCommand({ FunctionName: 'mine' })), 403);
});

test('the same key still works as a bearer token on /run (one key, two uses)', async () => {
  const created = await admin(s, 'POST', '/keys', JSON.stringify({ functions: ['*'] }), 'application/json');
  const { key } = created.body as { key: string };
  const res = await fetch(`${s.url}/api/v1/functions`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(res.status, 401, 'an invoke key never opens the admin API');
  await res.text();
});
