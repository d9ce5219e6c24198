// python3.x functions through the AWS API: Lambda's handler(event, context),
// dotted module paths, and errors named by their exception class.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CreateFunctionCommand, InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { invoke, startServer, testTiers, type TestServer } from '../helpers/server.js';
import { lambdaClient, zipOf } from './helpers.js';

describe('python through the AWS API [container]', { skip: !testTiers().includes('container') && 'container tier not under test' }, () => {
  let s: TestServer;
  let aws: LambdaClient;
  before(async () => {
    s = await startServer({ tier: 'container' });
    aws = lambdaClient(s);
  });
  after(async () => {
    aws?.destroy();
    await s?.stop();
  });

  test('python3.12 with Handler pkg.mod.handler runs, and a raised exception is Unhandled', async () => {
    const created = await aws.send(
      new CreateFunctionCommand({
        FunctionName: 'py',
        Runtime: 'python3.12',
        Role: 'r',
        Handler: 'pkg.mod.handler',
        Code: {
          ZipFile: zipOf({
            'pkg/__init__.py': '',
            'pkg/mod.py': 'def handler(event, context):\n    if event.get("fail"):\n        raise ValueError("no good")\n    return {"sum": sum(event["xs"])}\n',
          }),
        },
      }),
    );
    assert.equal(created.Runtime, 'python3.12');
    assert.equal(created.Handler, 'pkg.mod.handler');
    const r = await aws.send(new InvokeCommand({ FunctionName: 'py', Payload: Buffer.from('{"xs":[1,2,3]}') }));
    assert.deepEqual(JSON.parse(Buffer.from(r.Payload!).toString()), { sum: 6 });
    assert.deepEqual((await invoke(s, 'py', { xs: [4] })).body, { sum: 4 });
    const bad = await aws.send(new InvokeCommand({ FunctionName: 'py', Payload: Buffer.from('{"fail":true}') }));
    assert.equal(bad.FunctionError, 'Unhandled');
    const body = JSON.parse(Buffer.from(bad.Payload!).toString());
    assert.equal(body.errorType, 'ValueError');
    assert.match(body.errorMessage, /no good/);
  });
});
