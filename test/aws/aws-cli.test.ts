// The AWS CLI (botocore's signer, which signs other headers than the JS SDK)
// against a real `lamina up`. Skipped where no `aws` command is installed
// (.ci/run installs Debian's awscli).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { call, startServer, type TestServer } from '../helpers/server.js';
import { zipOf } from './helpers.js';

const hasAws = spawnSync('aws', ['--version'], { encoding: 'utf8' }).status === 0;

describe('the AWS CLI', { skip: hasAws ? false : 'no aws command on this machine' }, () => {
  let s: TestServer;
  const work = mkdtempSync(path.join(os.tmpdir(), 'lamina-awscli-'));
  const aws = (args: string[], secret?: string) => {
    const r = spawnSync('aws', ['lambda', ...args, '--endpoint-url', s.url, '--output', 'json'], {
      encoding: 'utf8',
      cwd: work,
      timeout: 60_000,
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'admin', AWS_SECRET_ACCESS_KEY: secret ?? s.token, AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' },
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  before(async () => {
    s = await startServer({ tier: 'process' });
  });
  after(async () => {
    await s?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test('create-function, invoke with Tail, publish-version, create-alias, errors', async () => {
    writeFileSync(path.join(work, 'fn.zip'), zipOf({ 'index.mjs': 'export const handler = async (e, ctx) => ({ hello: e.who, id: ctx.awsRequestId });' }));
    const c = aws(['create-function', '--function-name', 'hello', '--runtime', 'nodejs20.x', '--handler', 'index.handler', '--role', 'arn:aws:iam::000000000000:role/any', '--zip-file', 'fileb://fn.zip']);
    assert.equal(c.code, 0, c.err);
    assert.equal(JSON.parse(c.out).FunctionArn, 'arn:aws:lambda:us-east-1:000000000000:function:hello');
    // fileb:// is raw bytes in both CLI versions (v2 reads a literal --payload as base64).
    writeFileSync(path.join(work, 'event.json'), '{"who":"cli"}');
    const inv = aws(['invoke', '--function-name', 'hello', '--payload', 'fileb://event.json', '--log-type', 'Tail', 'out.json']);
    assert.equal(inv.code, 0, inv.err);
    const meta = JSON.parse(inv.out);
    assert.equal(meta.StatusCode, 200);
    assert.match(Buffer.from(meta.LogResult, 'base64').toString(), /REPORT RequestId: /);
    assert.equal(JSON.parse(readFileSync(path.join(work, 'out.json'), 'utf8')).hello, 'cli');
    const pub = aws(['publish-version', '--function-name', 'hello']);
    assert.equal(pub.code, 0, pub.err);
    const al = aws(['create-alias', '--function-name', 'hello', '--name', 'live', '--function-version', JSON.parse(pub.out).Version]);
    assert.equal(al.code, 0, al.err);
    assert.equal((await call(`${s.url}/run/hello:live`, { method: 'POST', body: '{"who":"run"}' })).body.hello, 'run');
    const missing = aws(['get-function', '--function-name', 'nope']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.err, /ResourceNotFoundException/);
    const wrong = aws(['list-functions'], 'wrong-secret');
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.err, /InvalidSignatureException/);
  });
});
