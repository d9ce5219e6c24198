// The AWS Lambda API through the real AWS SDK (@aws-sdk/client-lambda) against
// a real `lamina up`: every supported operation, the SigV4 refusals, AWS's
// errors, zip safety, versions and weighted aliases, and both deploy paths.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateAliasCommand,
  CreateFunctionCommand,
  DeleteAliasCommand,
  DeleteFunctionCommand,
  GetAliasCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
  ListAliasesCommand,
  ListFunctionsCommand,
  ListVersionsByFunctionCommand,
  PublishVersionCommand,
  UpdateAliasCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  type LambdaClient,
} from '@aws-sdk/client-lambda';
import { strToU8, zipSync } from 'fflate';
import { CLI, call, invoke, makeFunction, startServer, testTiers, type TestServer } from '../helpers/server.js';
import { lambdaClient, refused, zipOf } from './helpers.js';

const decode = (p: Uint8Array | undefined) => JSON.parse(Buffer.from(p ?? []).toString('utf8') || 'null');
const payload = (v: unknown) => Buffer.from(JSON.stringify(v));

/** The CLI, run asynchronously: a blocking spawnSync would starve the keep-alive timers of this process's HTTP client. */
function lamina(s: TestServer, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, LAMINA_URL: s.url, LAMINA_TOKEN: s.token }, timeout: 60_000 }, (err, out, errOut) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out, err: errOut });
    });
  });
}

const VERSIONED = (v: string) => `exports.handler = async () => ({ v: ${JSON.stringify(v)} });`;

describe('AWS Lambda API', () => {
  let s: TestServer;
  let aws: LambdaClient;
  before(async () => {
    s = await startServer({ tier: testTiers()[0] });
    aws = lambdaClient(s);
  });
  after(async () => {
    aws?.destroy();
    const code = await s?.stop();
    // A server that died under the tests says why.
    if (code !== 0 && code !== null) console.error(`server exited with ${code}:\n${s.output()}`);
  });

  test('CreateFunction (CommonJS), Invoke with any JSON event, Get*, List', async () => {
    const created = await aws.send(
      new CreateFunctionCommand({
        FunctionName: 'cjs',
        Runtime: 'nodejs20.x',
        Role: 'arn:aws:iam::123456789012:role/lambda',
        Handler: 'index.handler',
        Description: 'echo',
        MemorySize: 256,
        Timeout: 10,
        Environment: { Variables: { GREETING: 'hej' } },
        Code: { ZipFile: zipOf({ 'index.js': 'exports.handler = async (event) => ({ event, greeting: process.env.GREETING });' }) },
      }),
    );
    assert.equal(created.$metadata.httpStatusCode, 201);
    assert.equal(created.FunctionName, 'cjs');
    assert.equal(created.FunctionArn, 'arn:aws:lambda:eu-west-3:000000000000:function:cjs');
    assert.equal(created.Runtime, 'nodejs20.x');
    assert.equal(created.Handler, 'index.handler');
    assert.equal(created.MemorySize, 256);
    assert.equal(created.Timeout, 10);
    assert.equal(created.Version, '$LATEST');
    assert.equal(created.State, 'Active');
    assert.equal(created.Role, 'arn:aws:iam::123456789012:role/lambda');
    assert.deepEqual(created.Environment?.Variables, { GREETING: 'hej' });

    for (const event of [{ a: 1 }, [1, 'two'], 'text', 42, null]) {
      const r = await aws.send(new InvokeCommand({ FunctionName: 'cjs', Payload: payload(event) }));
      assert.equal(r.StatusCode, 200);
      assert.equal(r.FunctionError, undefined);
      assert.equal(r.ExecutedVersion, '$LATEST');
      assert.deepEqual(decode(r.Payload), { event, greeting: 'hej' });
    }
    const empty = await aws.send(new InvokeCommand({ FunctionName: 'cjs' }));
    assert.deepEqual(decode(empty.Payload), { event: {}, greeting: 'hej' });

    const got = await aws.send(new GetFunctionCommand({ FunctionName: 'cjs' }));
    assert.equal(got.Configuration?.Description, 'echo');
    assert.equal(got.Configuration?.CodeSha256, created.CodeSha256);
    const conf = await aws.send(new GetFunctionConfigurationCommand({ FunctionName: 'arn:aws:lambda:eu-west-3:000000000000:function:cjs' }));
    assert.equal(conf.FunctionName, 'cjs');
    const list = await aws.send(new ListFunctionsCommand({}));
    assert.ok(list.Functions?.some((f) => f.FunctionName === 'cjs' && f.Handler === 'index.handler'));

    await refused(aws.send(new CreateFunctionCommand({ FunctionName: 'cjs', Runtime: 'nodejs20.x', Role: 'r', Handler: 'index.handler', Code: { ZipFile: zipOf({ 'index.js': '' }) } })), 'ResourceConflictException', 409);
    await refused(aws.send(new CreateFunctionCommand({ FunctionName: 'java', Runtime: 'java21', Role: 'r', Handler: 'index.handler', Code: { ZipFile: zipOf({ 'index.js': '' }) } })), 'InvalidParameterValueException', 400);
    await refused(aws.send(new CreateFunctionCommand({ FunctionName: 'nohandler', Runtime: 'nodejs22.x', Role: 'r', Handler: 'missing.handler', Code: { ZipFile: zipOf({ 'index.js': '' }) } })), 'InvalidParameterValueException', 400);
    await refused(aws.send(new CreateFunctionCommand({ FunctionName: 'badmem', Runtime: 'nodejs22.x', Role: 'r', Handler: 'index.handler', MemorySize: 64, Code: { ZipFile: zipOf({ 'index.js': '' }) } })), 'InvalidParameterValueException', 400);
  });

  test('nested ESM handler (src/app.handler) sees Lambda context names', async () => {
    await aws.send(
      new CreateFunctionCommand({
        FunctionName: 'esm',
        Runtime: 'nodejs22.x',
        Role: 'r',
        Handler: 'src/app.handler',
        MemorySize: 192,
        Code: {
          ZipFile: zipOf({
            'src/app.mjs': `import { tag } from './lib.mjs';
export async function handler(event, context) {
  const { awsRequestId, functionName, functionVersion, memoryLimitInMB, invokedFunctionArn, logGroupName, logStreamName } = context;
  return { tag: tag(event), awsRequestId, functionName, functionVersion, memoryLimitInMB, invokedFunctionArn, logGroupName, logStreamName };
}`,
            'src/lib.mjs': 'export const tag = (e) => `esm:${e.x}`;',
          }),
        },
      }),
    );
    const r = await aws.send(new InvokeCommand({ FunctionName: 'esm', Payload: payload({ x: 7 }) }));
    const v = decode(r.Payload);
    assert.equal(v.tag, 'esm:7');
    assert.match(v.awsRequestId, /^[0-9a-f-]{36}$/);
    assert.equal(v.functionName, 'esm');
    assert.equal(v.functionVersion, 1);
    assert.equal(v.memoryLimitInMB, '192');
    assert.equal(v.invokedFunctionArn, 'arn:aws:lambda:us-east-1:000000000000:function:esm');
    assert.equal(v.logGroupName, '/aws/lambda/esm');
    assert.match(v.logStreamName, /^\d{4}\/\d{2}\/\d{2}\/\[1\]/);
  });

  test('UpdateFunctionCode and UpdateFunctionConfiguration', async () => {
    await aws.send(new CreateFunctionCommand({ FunctionName: 'upd', Runtime: 'nodejs20.x', Role: 'r', Handler: 'main.run', Code: { ZipFile: zipOf({ 'main.js': 'exports.run = async () => "one";' }) } }));
    assert.equal(decode((await aws.send(new InvokeCommand({ FunctionName: 'upd' }))).Payload), 'one');
    const code = await aws.send(new UpdateFunctionCodeCommand({ FunctionName: 'upd', ZipFile: zipOf({ 'main.js': 'exports.run = async () => "two:" + process.env.MODE;' }) }));
    assert.equal(code.Handler, 'main.run');
    assert.equal(decode((await aws.send(new InvokeCommand({ FunctionName: 'upd' }))).Payload), 'two:undefined');
    const conf = await aws.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'upd', MemorySize: 512, Timeout: 5, Environment: { Variables: { MODE: 'prod' } }, Description: 'updated' }));
    assert.equal(conf.MemorySize, 512);
    assert.equal(conf.Timeout, 5);
    assert.equal(conf.Description, 'updated');
    assert.equal(decode((await aws.send(new InvokeCommand({ FunctionName: 'upd' }))).Payload), 'two:prod');
    await refused(aws.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'upd', Handler: 'other.run' })), 'InvalidParameterValueException', 400);
    // The new configuration is validated like a deploy's manifest.
    await refused(aws.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'upd', Environment: { Variables: { LAMINA_TOKEN: 'x' } } })), 'InvalidParameterValueException', 400);
    await refused(aws.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'upd', Timeout: 901 })), 'InvalidParameterValueException', 400);
    await refused(aws.send(new UpdateFunctionCodeCommand({ FunctionName: 'nope', ZipFile: zipOf({ 'main.js': '' }) })), 'ResourceNotFoundException', 404);
  });

  test('a handler error answers 200 with FunctionError Unhandled; Tail ends with the REPORT line', async () => {
    await aws.send(
      new CreateFunctionCommand({
        FunctionName: 'fails',
        Runtime: 'nodejs20.x',
        Role: 'r',
        Handler: 'index.handler',
        Code: { ZipFile: zipOf({ 'index.js': 'exports.handler = async (e) => { console.log("about to fail", e.n); throw new TypeError("bad input " + e.n); };' }) },
      }),
    );
    const r = await aws.send(new InvokeCommand({ FunctionName: 'fails', Payload: payload({ n: 3 }), LogType: 'Tail' }));
    assert.equal(r.StatusCode, 200);
    assert.equal(r.FunctionError, 'Unhandled');
    const body = decode(r.Payload);
    assert.equal(body.errorMessage, 'bad input 3');
    assert.equal(body.errorType, 'TypeError');
    assert.ok(Array.isArray(body.stackTrace));
    const log = Buffer.from(r.LogResult!, 'base64').toString('utf8');
    assert.match(log, /about to fail 3/);
    assert.match(log, /REPORT RequestId: [0-9a-f-]{36}\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB\t(Init Duration: [\d.]+ ms\t)?\n$/);

    // Tail is at most 4 KB, and still ends with the REPORT line.
    await aws.send(new CreateFunctionCommand({ FunctionName: 'chatty', Runtime: 'nodejs20.x', Role: 'r', Handler: 'index.handler', Code: { ZipFile: zipOf({ 'index.js': 'exports.handler = async () => { for (let i = 0; i < 500; i++) console.log("line " + i); return 1; };' }) } }));
    const t = await aws.send(new InvokeCommand({ FunctionName: 'chatty', LogType: 'Tail' }));
    const tail = Buffer.from(t.LogResult!, 'base64');
    assert.ok(tail.length <= 4096 && tail.length > 3000, `${tail.length} bytes`);
    assert.match(tail.toString(), /line 499\nREPORT RequestId: /);
    // The record's logs (what `lamina logs` prints) end with it too.
    const logs = await lamina(s, ['logs', 'chatty']);
    assert.equal(logs.code, 0, logs.err);
    assert.match(logs.out, /REPORT RequestId: /);
  });

  test('Event answers 202 and runs the call; DryRun answers 204; bad payloads and types are refused', async () => {
    await aws.send(new CreateFunctionCommand({ FunctionName: 'later', Runtime: 'nodejs20.x', Role: 'r', Handler: 'index.handler', Code: { ZipFile: zipOf({ 'index.js': 'exports.handler = async (e) => { console.log("ran " + e.tag); return e.tag; };' }) } }));
    const ev = await aws.send(new InvokeCommand({ FunctionName: 'later', InvocationType: 'Event', Payload: payload({ tag: 'async-1' }) }));
    assert.equal(ev.StatusCode, 202);
    const dry = await aws.send(new InvokeCommand({ FunctionName: 'later', InvocationType: 'DryRun', Payload: payload({ tag: 'dry' }) }));
    assert.equal(dry.StatusCode, 204);
    const requestId = ev.$metadata.requestId!;
    let rec: { body?: { status?: string; logs?: string } } = {};
    for (let i = 0; i < 200; i++) {
      rec = await call(`${s.url}/api/v1/invocations/${requestId}`, { headers: { authorization: `Bearer ${s.token}` } });
      // Queued, then Running, then its end: wait for the end.
      if (rec.body?.status && rec.body.status !== 'Queued' && rec.body.status !== 'Running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(rec.body?.status, 'Success');
    assert.match(rec.body?.logs ?? '', /ran async-1/);
    await refused(aws.send(new InvokeCommand({ FunctionName: 'later', Payload: Buffer.from('{not json') })), 'InvalidRequestContentException', 400);
    await refused(aws.send(new InvokeCommand({ FunctionName: 'missing' })), 'ResourceNotFoundException', 404);
    await refused(aws.send(new GetFunctionCommand({ FunctionName: 'missing' })), 'ResourceNotFoundException', 404);
  });

  test('PublishVersion, ListVersionsByFunction, aliases, name:version and name:alias (AWS and /run)', async () => {
    await aws.send(new CreateFunctionCommand({ FunctionName: 'rel', Runtime: 'nodejs20.x', Role: 'r', Handler: 'index.handler', Code: { ZipFile: zipOf({ 'index.js': VERSIONED('a') }) } }));
    const v1 = await aws.send(new PublishVersionCommand({ FunctionName: 'rel', Description: 'first' }));
    assert.equal(v1.$metadata.httpStatusCode, 201);
    assert.equal(v1.Description, 'first');
    assert.equal(v1.FunctionArn, `arn:aws:lambda:eu-west-3:000000000000:function:rel:${v1.Version}`);
    await aws.send(new UpdateFunctionCodeCommand({ FunctionName: 'rel', ZipFile: zipOf({ 'index.js': VERSIONED('b') }) }));
    const v2 = await aws.send(new PublishVersionCommand({ FunctionName: 'rel' }));
    assert.notEqual(v2.Version, v1.Version);
    await aws.send(new UpdateFunctionCodeCommand({ FunctionName: 'rel', ZipFile: zipOf({ 'index.js': VERSIONED('c') }) }));

    const versions = await aws.send(new ListVersionsByFunctionCommand({ FunctionName: 'rel' }));
    assert.deepEqual(versions.Versions?.map((v) => v.Version), ['$LATEST', v1.Version, v2.Version]);

    const alias = await aws.send(new CreateAliasCommand({ FunctionName: 'rel', Name: 'live', FunctionVersion: v1.Version, Description: 'prod' }));
    assert.equal(alias.AliasArn, 'arn:aws:lambda:eu-west-3:000000000000:function:rel:live');
    assert.equal(alias.FunctionVersion, v1.Version);
    await refused(aws.send(new CreateAliasCommand({ FunctionName: 'rel', Name: 'live', FunctionVersion: v1.Version })), 'ResourceConflictException', 409);
    await refused(aws.send(new CreateAliasCommand({ FunctionName: 'rel', Name: 'x', FunctionVersion: '999' })), 'ResourceNotFoundException', 404);

    const run = async (FunctionName: string, Qualifier?: string) => {
      const r = await aws.send(new InvokeCommand({ FunctionName, Qualifier }));
      return { v: decode(r.Payload).v, executed: r.ExecutedVersion };
    };
    assert.deepEqual(await run('rel'), { v: 'c', executed: '$LATEST' });
    assert.deepEqual(await run('rel:live'), { v: 'a', executed: v1.Version });
    assert.deepEqual(await run('rel', 'live'), { v: 'a', executed: v1.Version });
    assert.deepEqual(await run(`rel:${v2.Version}`), { v: 'b', executed: v2.Version });
    assert.equal((await invoke(s, 'rel:live')).body.v, 'a');
    assert.equal((await invoke(s, `rel:${v2.Version}`)).body.v, 'b');
    assert.equal((await invoke(s, 'rel:nosuch')).status, 404);
    await refused(aws.send(new InvokeCommand({ FunctionName: 'rel:nosuch' })), 'ResourceNotFoundException', 404);

    const got = await aws.send(new GetAliasCommand({ FunctionName: 'rel', Name: 'live' }));
    assert.equal(got.Description, 'prod');
    const moved = await aws.send(new UpdateAliasCommand({ FunctionName: 'rel', Name: 'live', FunctionVersion: v2.Version }));
    assert.equal(moved.FunctionVersion, v2.Version);
    assert.equal((await invoke(s, 'rel:live')).body.v, 'b');
    await refused(aws.send(new UpdateAliasCommand({ FunctionName: 'rel', Name: 'live', FunctionVersion: v1.Version, RevisionId: got.RevisionId })), 'ResourceConflictException', 409);
    const conf = await aws.send(new GetFunctionConfigurationCommand({ FunctionName: 'rel', Qualifier: 'live' }));
    assert.equal(conf.Version, v2.Version);
    const list = await aws.send(new ListAliasesCommand({ FunctionName: 'rel' }));
    assert.deepEqual(list.Aliases?.map((a) => a.Name), ['live']);
    await aws.send(new DeleteAliasCommand({ FunctionName: 'rel', Name: 'live' }));
    await refused(aws.send(new GetAliasCommand({ FunctionName: 'rel', Name: 'live' })), 'ResourceNotFoundException', 404);
  });

  test('an alias with a 10% weight sends 10% of 1000 calls to the second version (5 sigma)', async () => {
    await aws.send(new CreateFunctionCommand({ FunctionName: 'canary', Runtime: 'nodejs20.x', Role: 'r', Handler: 'index.handler', Code: { ZipFile: zipOf({ 'index.js': VERSIONED('stable') }) }, Publish: true }));
    const stable = (await aws.send(new ListVersionsByFunctionCommand({ FunctionName: 'canary' }))).Versions!.at(-1)!.Version!;
    const next = await aws.send(new UpdateFunctionCodeCommand({ FunctionName: 'canary', ZipFile: zipOf({ 'index.js': VERSIONED('next') }), Publish: true }));
    await aws.send(new CreateAliasCommand({ FunctionName: 'canary', Name: 'prod', FunctionVersion: stable, RoutingConfig: { AdditionalVersionWeights: { [next.Version!]: 0.1 } } }));
    const alias = await aws.send(new GetAliasCommand({ FunctionName: 'canary', Name: 'prod' }));
    assert.deepEqual(alias.RoutingConfig?.AdditionalVersionWeights, { [next.Version!]: 0.1 });
    const n = 1000;
    const counts = { stable: 0, next: 0 };
    let i = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (i < n) {
          i++;
          const r = await aws.send(new InvokeCommand({ FunctionName: 'canary:prod' }));
          const v = decode(r.Payload).v as 'stable' | 'next';
          assert.equal(r.ExecutedVersion, v === 'next' ? next.Version : stable);
          counts[v]++;
        }
      }),
    );
    assert.equal(counts.stable + counts.next, n);
    const sigma = Math.sqrt(n * 0.1 * 0.9);
    assert.ok(Math.abs(counts.next - n * 0.1) <= 5 * sigma, `${counts.next} of ${n} calls went to the canary (expected 100 +- ${Math.round(5 * sigma)})`);
    await refused(aws.send(new UpdateAliasCommand({ FunctionName: 'canary', Name: 'prod', RoutingConfig: { AdditionalVersionWeights: { [next.Version!]: 1.5 } } })), 'InvalidParameterValueException', 400);
  });

  test('SigV4: a wrong secret, an unsigned request and a skewed date are refused with 403', async () => {
    const wrong = lambdaClient(s, { secret: 'not-the-token' });
    await refused(wrong.send(new ListFunctionsCommand({})), 'InvalidSignatureException', 403);
    const unknown = lambdaClient(s, { id: 'AKIDUNKNOWN', secret: s.token });
    await refused(unknown.send(new ListFunctionsCommand({})), 'InvalidSignatureException', 403);
    const skewed = lambdaClient(s, {}, { systemClockOffset: -20 * 60 * 1000 });
    const e = await refused(skewed.send(new InvokeCommand({ FunctionName: 'cjs' })), 'InvalidSignatureException', 403);
    assert.match(e.message, /15 minutes/);
    const unsigned = await call(`${s.url}/2015-03-31/functions/`);
    assert.equal(unsigned.status, 403);
    assert.equal(unsigned.headers.get('x-amzn-errortype'), 'InvalidSignatureException');
    const inv = await call(`${s.url}/2015-03-31/functions/cjs/invocations`, { method: 'POST', body: '{}' });
    assert.equal(inv.status, 403);
    // A signed request whose body was changed on the way fails too.
    const tampered = lambdaClient(s);
    // After signing (the deserialize step wraps the transport), a body of the same length.
    tampered.middlewareStack.add((next) => async (args) => {
      (args.request as { body?: unknown }).body = Buffer.from('{"a":2}');
      return next(args);
    }, { step: 'deserialize', priority: 'low' });
    await refused(tampered.send(new InvokeCommand({ FunctionName: 'cjs', Payload: payload({ a: 1 }) })), 'InvalidSignatureException', 403);
    // The server kept serving.
    assert.equal((await aws.send(new InvokeCommand({ FunctionName: 'cjs', Payload: payload(1) }))).StatusCode, 200);
    for (const c of [wrong, unknown, skewed, tampered]) c.destroy();
  });

  test('zip bombs, path traversal and links are refused', async () => {
    const create = (FunctionName: string, zip: Uint8Array) =>
      aws.send(new CreateFunctionCommand({ FunctionName, Runtime: 'nodejs20.x', Role: 'r', Handler: 'index.handler', Code: { ZipFile: zip } }));
    // 100 MB of zeros in a ~100 KB zip.
    const bomb = zipSync({ 'index.js': strToU8('exports.handler = async () => 1;'), 'zeros.bin': new Uint8Array(100 * 1024 * 1024) }, { level: 9 });
    assert.ok(bomb.length < 1024 * 1024);
    const e1 = await refused(create('bomb', bomb), 'InvalidParameterValueException', 400);
    assert.match(e1.message, /zip bomb|exceed/);
    const e2 = await refused(create('trav', zipSync({ 'index.js': strToU8(''), '../../evil.js': strToU8('pwned') })), 'InvalidParameterValueException', 400);
    assert.match(e2.message, /leaves the archive root/);
    const e3 = await refused(create('abs', zipSync({ 'index.js': strToU8(''), '/etc/evil': strToU8('pwned') })), 'InvalidParameterValueException', 400);
    assert.match(e3.message, /absolute path/);
    // A symbolic link (unix mode 0120777 in the external attributes).
    const link = zipSync({ 'index.js': strToU8(''), 'passwd': [strToU8('/etc/passwd'), { os: 3, attrs: (0o120777 << 16) >>> 0 }] });
    const e4 = await refused(create('link', link), 'InvalidParameterValueException', 400);
    assert.match(e4.message, /symbolic link/);
    await refused(create('notzip', Buffer.from('hello there, not a zip archive at all')), 'InvalidParameterValueException', 400);
    for (const name of ['bomb', 'trav', 'abs', 'link', 'notzip']) await refused(aws.send(new GetFunctionCommand({ FunctionName: name })), 'ResourceNotFoundException', 404);
  });

  test('a function deployed with `lamina deploy` is invoked through the SDK, and the other way round', async () => {
    const dir = makeFunction({ 'index.ts': 'export async function handler(e: { n: number }) { return { doubled: e.n * 2 }; }' }, { name: 'native', memoryMb: 160 });
    try {
      const d = await lamina(s, ['deploy', dir]);
      assert.equal(d.code, 0, d.err);
    } finally {
      rmSync(path.dirname(dir), { recursive: true, force: true });
    }
    const r = await aws.send(new InvokeCommand({ FunctionName: 'native', Payload: payload({ n: 21 }) }));
    assert.deepEqual(decode(r.Payload), { doubled: 42 });
    const conf = await aws.send(new GetFunctionConfigurationCommand({ FunctionName: 'native' }));
    assert.equal(conf.Handler, 'index.handler');
    assert.equal(conf.MemorySize, 160);
    assert.equal(conf.Runtime, 'nodejs20.x');

    // CreateFunction -> /run and `lamina invoke`, `lamina ls`.
    await aws.send(new CreateFunctionCommand({ FunctionName: 'fromaws', Runtime: 'nodejs18.x', Role: 'r', Handler: 'handler.main', Code: { ZipFile: zipOf({ 'handler.js': 'module.exports.main = async (e) => ({ hello: e.who });' }) } }));
    assert.deepEqual((await invoke(s, 'fromaws', { who: 'run' })).body, { hello: 'run' });
    const cli = await lamina(s, ['invoke', 'fromaws', '--data', '{"who":"cli"}']);
    assert.equal(cli.code, 0, cli.err);
    assert.deepEqual(JSON.parse(cli.out), { hello: 'cli' });
    assert.match((await lamina(s, ['ls'])).out, /fromaws/);

    // DeleteFunction through AWS removes it for Lamina too.
    const del = await aws.send(new DeleteFunctionCommand({ FunctionName: 'fromaws' }));
    assert.equal(del.$metadata.httpStatusCode, 204);
    assert.equal((await invoke(s, 'fromaws', {})).status, 404);
    await refused(aws.send(new DeleteFunctionCommand({ FunctionName: 'fromaws' })), 'ResourceNotFoundException', 404);
  });

  test('lamina publish, alias and rollback', async () => {
    const dir = makeFunction({ 'index.mjs': 'export const handler = async () => "r1";' }, { name: 'roll' });
    const redeploy = async (text: string) => {
      writeFileSync(path.join(dir, 'index.mjs'), text);
      const d = await lamina(s, ['deploy', dir]);
      assert.equal(d.code, 0, d.err);
    };
    try {
      await redeploy('export const handler = async () => "r1";');
      const p1 = await lamina(s, ['publish', 'roll', '-d', 'first']);
      assert.equal(p1.code, 0, p1.err);
      assert.match(p1.out, /published roll version 1/);
      await redeploy('export const handler = async () => "r2";');
      assert.equal((await lamina(s, ['publish', 'roll'])).code, 0);
      const a = await lamina(s, ['alias', 'roll', 'live', '1', '--canary', '2=0.25']);
      assert.equal(a.code, 0, a.err);
      assert.match(a.out, /roll:live -> version 1 \(25% to version 2\)/);
      assert.match((await lamina(s, ['alias', 'roll'])).out, /live\s+1\s+2 @ 0.25/);
      assert.equal((await lamina(s, ['alias', 'roll', 'live', '2'])).code, 0);
      assert.equal((await invoke(s, 'roll:live')).body, 'r2');
      const bad = await lamina(s, ['alias', 'roll', 'broken', '9']);
      assert.equal(bad.code, 1);
      assert.match(bad.err, /no version 9/);

      assert.equal((await invoke(s, 'roll')).body, 'r2');
      const rb = await lamina(s, ['rollback', 'roll']);
      assert.equal(rb.code, 0, rb.err);
      assert.match(rb.out, /rolled roll back to version 1 \(now current as version 3\)/);
      assert.equal((await invoke(s, 'roll')).body, 'r1');
      assert.equal((await lamina(s, ['rollback', 'roll', '2'])).code, 0);
      assert.equal((await invoke(s, 'roll')).body, 'r2');
      assert.equal((await lamina(s, ['alias', 'roll', 'live', '--rm'])).code, 0);
      assert.equal((await invoke(s, 'roll:live')).status, 404);
      for (const cmd of ['publish', 'alias', 'rollback']) assert.match((await lamina(s, [cmd, '--help'])).out, /Usage: lamina/);
    } finally {
      rmSync(path.dirname(dir), { recursive: true, force: true });
    }
  });
});
