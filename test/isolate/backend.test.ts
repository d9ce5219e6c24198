// The isolate backend driven as the worker drives it: calls, context, handler
// styles, errors, timeouts, memory limits and concurrency.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { LaminaError } from '../../src/errors.js';
import { IsolateBackend } from '../../src/sandbox/isolate/backend.js';
import { buildHostFiles } from '../../src/sandbox/isolate/build.js';
import { RunDir } from '../../src/sandbox/run-dir.js';
import { AUTO_ORDER, TIER_FACTORIES } from '../../src/sandbox/tiers.js';
import { build, call, Fixture, SNIPPET_RUNNER } from './helpers.js';

const fx = new Fixture();
after(() => fx.close());

test('the isolate tier is registered but never chosen by auto', () => {
  assert.equal(typeof TIER_FACTORIES.isolate, 'function');
  assert.ok(!AUTO_ORDER.includes('isolate'));
});

test('probe reports isolated-vm working', async () => {
  const p = await fx.backend.probe();
  assert.equal(p.ok, true, p.reason);
  assert.match(p.reason, /isolated-vm 5\./);
  assert.equal(fx.backend.supports('node'), true);
  assert.equal(fx.backend.supports('python'), false);
});

test('a missing or broken isolated-vm makes probe() say why, without throwing', async () => {
  const runDir = new RunDir('lamina-iso-probe-');
  try {
    const missing = new IsolateBackend(runDir);
    (missing as unknown as { files: Promise<unknown> }).files = Promise.reject(new Error('isolated-vm is not installed (npm install isolated-vm@^5)'));
    assert.deepEqual(await missing.probe(), { ok: false, reason: 'isolated-vm is not installed (npm install isolated-vm@^5)' });

    const files = await buildHostFiles(path.join(runDir.root, 'broken'));
    const addon = path.join(files.dir, 'isolated_vm.node');
    fs.chmodSync(addon, 0o644);
    fs.writeFileSync(addon, 'not a shared object');
    const broken = new IsolateBackend(runDir);
    (broken as unknown as { files: Promise<unknown> }).files = Promise.resolve(files);
    const p = await broken.probe();
    assert.equal(p.ok, false);
    assert.match(p.reason, /isolate host (exited|was killed)|invalid ELF|not start/);
    await broken.close();
  } finally {
    runDir.remove();
  }
});

test('a TypeScript handler gets the event, the context and env; logs are per call', async () => {
  const fn = await build(
    {
      'index.ts': [
        "import { greet } from './lib/greet.js';",
        "console.log('loading');",
        'export async function handler(event: { who: string }, context: any) {',
        '  console.log(greet(event.who));',
        '  const { getRemainingTimeInMillis, env, ...rest } = context;',
        '  return { rest, left: getRemainingTimeInMillis(), env };',
        '}',
      ].join('\n'),
      'lib/greet.ts': 'export const greet = (who: string): string => `hi ${who}`;',
    },
    { memoryMb: 64, env: { GREETING: 'hey' } },
    'ctxfn',
  );
  const sb = await fx.start(fn);
  assert.equal(sb.tier, 'isolate');
  const deadlineMs = Date.now() + 4000;
  const o = await sb.invoke({ requestId: 'r-1', event: { who: 'ada' }, deadlineMs, coldStart: true });
  assert.ok(o.ok, o.error?.message);
  const v = o.value as { rest: Record<string, unknown>; left: number; env: Record<string, string> };
  const { logStreamName, ...names } = v.rest;
  assert.deepEqual(names, {
    requestId: 'r-1', functionName: 'ctxfn', functionVersion: 1, memoryLimitMb: 64, deadlineMs, coldStart: true,
    // AWS Lambda's names (src/runtime/lambda-context.ts).
    awsRequestId: 'r-1', invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:ctxfn', memoryLimitInMB: '64',
    logGroupName: '/aws/lambda/ctxfn', callbackWaitsForEmptyEventLoop: false,
  });
  assert.match(String(logStreamName), /^\d{4}\/\d{2}\/\d{2}\/\[1\]lamina$/);
  assert.ok(v.left > 3000 && v.left <= 4000, `remaining ${v.left}`);
  assert.deepEqual(v.env, { GREETING: 'hey' });
  assert.equal(o.logs, 'loading\nhi ada\n', 'load-time output goes with the first call');
  assert.ok(o.maxMemoryBytes > 0);
  const o2 = await call(sb, { who: 'bob' });
  assert.equal(o2.logs, 'hi bob\n');
  const s = await sb.stats();
  assert.ok(s.memoryBytes > 100_000 && s.memoryBytes < 8 * 1048576, `memory ${s.memoryBytes}`);
  assert.ok(s.maxMemoryBytes >= s.memoryBytes);
  assert.ok(typeof s.cpuMs === 'number' && s.cpuMs > 0);
  assert.equal(sb.pause, undefined, 'isolates are not paused: an idle one runs nothing');
});

test('handler styles: export default, CommonJS exports.handler, module.exports, a custom name', async () => {
  const cases: [Record<string, string>, Record<string, unknown>][] = [
    [{ 'index.ts': 'export default async (e: { n: number }) => e.n + 1;' }, {}],
    [{ 'index.js': "const { twice } = require('./util');\nexports.handler = async (e) => twice(e.n);", 'util.js': 'module.exports.twice = (x) => x * 2;' }, {}],
    [{ 'index.js': 'async function handler(e) { return e.n * 3; }\nmodule.exports = { handler };' }, {}],
    [{ 'index.mjs': 'export const main = (e) => e.n - 1;' }, { handler: 'main' }],
  ];
  const got = [];
  for (const [files, m] of cases) got.push((await call(await fx.start(await build(files, m)), { n: 10 })).value);
  assert.deepEqual(got, [11, 20, 30, 9]);
});

test('a throwing handler is a HandlerError with message and stack; the isolate lives on', async () => {
  const sb = await fx.start(await build({ 'index.ts': 'export async function handler(e: any) {\n  if (e.fail) throw new TypeError(`bad ${e.fail}`);\n  if (e.raw) throw { code: 7 };\n  return e.undef ? undefined : "fine";\n}' }));
  const o = await call(sb, { fail: 'input' });
  assert.equal(o.ok, false);
  assert.equal(o.error?.type, 'HandlerError');
  assert.equal(o.error?.message, 'bad input');
  assert.match(o.error!.stack!, /^TypeError: bad input\n\s+at handler \(fn\/isolate\.js:\d+:\d+\)/);
  assert.equal((await call(sb, { raw: true })).error?.message, '{"code":7}');
  assert.equal(sb.alive, true);
  assert.equal((await call(sb)).value, 'fine');
  assert.equal((await call(sb, { undef: true })).value, null, 'undefined is sent as null');
  const bad = await fx.start(await build({ 'index.js': 'export const handler = () => ({ n: 1n });' }));
  assert.match((await call(bad)).error!.message, /not JSON-serializable/);
});

test('load failures: a throwing top level, a missing handler, code not built for isolates', async () => {
  await assert.rejects(fx.start(await build({ 'index.ts': 'throw new Error("init boom");\nexport const handler = () => 1;' })), (err: unknown) => {
    assert.ok(err instanceof LaminaError);
    assert.equal(err.type, 'HandlerError');
    assert.match(err.message, /failed to initialize: init boom/);
    return true;
  });
  await assert.rejects(fx.start(await build({ 'index.ts': 'export const other = 1;' })), /index\.ts does not export a function "handler"/);
  const nodeBuild = await build({ 'index.ts': 'export const handler = () => 1;' }, { sandbox: 'process' });
  await assert.rejects(fx.start(nodeBuild), (err: unknown) => err instanceof LaminaError && err.type === 'SandboxCrashed' && /no isolate build.*"sandbox": "isolate"/.test(err.message));
});

test('an infinite loop is a Timeout that ends the isolate, while another isolate keeps answering', async () => {
  const fn = await build(SNIPPET_RUNNER, {}, 'loopfn');
  const spinner = await fx.start(fn);
  const other = await fx.start(fn);
  // The other isolate must answer while the loop still runs: judged by order, not by a clock
  // (the spinner's 2 s deadline leaves room for a loaded machine).
  const spinning = call(spinner, { code: 'for (;;) {}' }, 2000);
  let spun = false;
  void spinning.then(() => (spun = true));
  const answers: number[] = [];
  for (let i = 0; i < 5; i++) {
    const o = await call(other, { code: `return ${i};` });
    answers.push(o.value as number);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(!spun, 'answered while the loop ran');
  const o = await spinning;
  assert.equal(o.error?.type, 'Timeout');
  assert.ok(o.durationMs >= 1990, `timed out after ${o.durationMs} ms`);
  assert.equal(spinner.alive, false, 'a timed-out isolate is dead');
  assert.deepEqual(answers, [0, 1, 2, 3, 4]);
  assert.equal((await call(other, { code: 'return "still here";' })).value, 'still here');
  const late = await call(spinner);
  assert.equal(late.error?.type, 'SandboxCrashed');
});

test('a never-settling promise times out too; an async loop after await as well', async () => {
  const sb = await fx.start(await build(SNIPPET_RUNNER));
  assert.equal((await call(sb, { code: 'await new Promise(() => {});' }, 200)).error?.type, 'Timeout');
  const sb2 = await fx.start(await build(SNIPPET_RUNNER));
  assert.equal((await call(sb2, { code: 'await new Promise((r) => setTimeout(r, 10)); for (;;) {}' }, 300)).error?.type, 'Timeout');
});

test('a growing allocation is MemoryLimitExceeded for that isolate only; the server heap is unaffected', async () => {
  const fn = await build(SNIPPET_RUNNER, { memoryMb: 64 }, 'memfn');
  const bomb = await fx.start(fn);
  const other = await fx.start(fn);
  const heapBefore = process.memoryUsage().heapUsed;
  const deaths: string[] = [];
  bomb.onDeath((r) => deaths.push(r));
  const o = await call(bomb, { code: 'const a = []; for (;;) a.push({ x: a.length, s: "y".repeat(100) + a.length });' }, 20_000);
  assert.equal(o.error?.type, 'MemoryLimitExceeded', o.error?.message);
  assert.match(o.error!.message, /memory limit of 64 MB/);
  assert.ok(o.maxMemoryBytes >= 64 * 1048576);
  assert.equal(bomb.alive, false);
  assert.equal(deaths.length, 1);
  assert.equal((await call(other, { code: 'return 7;' })).value, 7, 'the other isolate of the same host is fine');
  const ab = await fx.start(fn);
  assert.equal((await call(ab, { code: 'const k = []; for (;;) k.push(new ArrayBuffer(1 << 20));' })).error?.type, 'MemoryLimitExceeded');
  const grew = process.memoryUsage().heapUsed - heapBefore;
  console.log(`server heap change during the bombs: ${(grew / 1048576).toFixed(1)} MB`);
  assert.ok(grew < 16 * 1048576, `server heap grew by ${grew} bytes`);
});

test('one allocation far past the limit aborts the host, not the server: MemoryLimitExceeded, then a fresh host', async () => {
  const fn = await build(SNIPPET_RUNNER, { memoryMb: 64 }, 'hugefn');
  const bomb = await fx.start(fn);
  const sibling = await fx.start(fn);
  const siblingDeaths: string[] = [];
  sibling.onDeath((r) => siblingDeaths.push(r));
  const o = await call(bomb, { code: 'new Array(2 ** 27).fill(0); return 1;' }, 20_000);
  assert.equal(o.error?.type, 'MemoryLimitExceeded', o.error?.message);
  assert.equal(bomb.alive, false);
  // Same function, same host: its sibling went down with it (and the worker is told).
  assert.equal(sibling.alive, false);
  assert.match(siblingDeaths[0] ?? '', /^MemoryLimitExceeded/);
  const other = await fx.start(await build(SNIPPET_RUNNER, {}, 'bystander'));
  assert.equal((await call(other, { code: 'return "other functions live in other hosts";' })).ok, true);
  const again = await fx.start(fn);
  assert.equal((await call(again, { code: 'return 2;' })).value, 2, 'the next instance gets a new host');
});

test('instanceConcurrency > 1: interleaved async calls in one isolate keep their own logs', async () => {
  const sb = await fx.start(await build({
    'index.js': `export async function handler(e) {
      console.log('start', e.id);
      await new Promise((r) => setTimeout(r, e.wait));
      console.log('after timer', e.id);
      await new Promise((r) => setTimeout(r, 5));
      console.log('end', e.id);
      return e.id;
    }`,
  }, { instanceConcurrency: 4 }));
  const outs = await Promise.all([call(sb, { id: 'a', wait: 30 }), call(sb, { id: 'b', wait: 5 }), call(sb, { id: 'c', wait: 15 })]);
  for (const [i, id] of ['a', 'b', 'c'].entries()) {
    assert.equal(outs[i]!.value, id);
    assert.equal(outs[i]!.logs, `start ${id}\nafter timer ${id}\nend ${id}\n`);
  }
});

test('timers do not run between calls (an idle isolate burns nothing); due ones fire in the next call', async () => {
  const sb = await fx.start(await build({
    'index.js': `let ticks = 0; let started = false;
      export async function handler(e) {
        if (!started) { started = true; setInterval(() => { ticks++; console.log('tick'); }, 5); }
        await new Promise((r) => setTimeout(r, e.wait));
        return ticks;
      }`,
  }));
  const first = (await call(sb, { wait: 50 })).value as number;
  assert.ok(first >= 3, `ticked ${first} times during the call`);
  const cpuBefore = (await sb.stats()).cpuMs!;
  await new Promise((r) => setTimeout(r, 300));
  const cpuAfter = (await sb.stats()).cpuMs!;
  assert.ok(cpuAfter - cpuBefore < 5, `idle isolate used ${cpuAfter - cpuBefore} ms of CPU`);
  const second = await call(sb, { wait: 0 });
  assert.ok((second.value as number) <= first + 3, 'ticks did not pile up while idle');
});

test('logs are capped at 64 KiB per call', async () => {
  const sb = await fx.start(await build(SNIPPET_RUNNER));
  const o = await call(sb, { code: 'for (let i = 0; i < 5000; i++) console.log("x".repeat(100)); return 1;' });
  assert.ok(o.ok);
  assert.ok(o.logs.length <= 64 * 1024 + 40, `logs ${o.logs.length}`);
  assert.match(o.logs, /\[lamina: log truncated\]\n$/);
});

test('destroy is idempotent and fails later calls', async () => {
  const sb = await fx.start(await build(SNIPPET_RUNNER));
  await sb.destroy();
  await sb.destroy();
  assert.equal(sb.alive, false);
  assert.equal((await call(sb)).error?.type, 'SandboxCrashed');
});
