// Property-based fuzzing of the worker's side of the runtime protocol
// (issue 9, item 1): whatever bytes a runtime writes to fd 3 (arbitrary JSON,
// frame-like objects with wrong types or ids, truncated lines, raw bytes, huge
// lines), the call ends with an outcome, the test process (the server's side)
// never throws, only the offending sandbox dies, and a healthy sandbox beside
// it keeps answering.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { bufferBudget } from '../../src/sandbox/buffer-budget.js';
import { Channel, type RuntimeFrame } from '../../src/sandbox/channel.js';
import { ChildRuntimeSandbox } from '../../src/sandbox/child-runtime.js';
import { MAX_FRAME_BYTES } from '../../src/sandbox/frames.js';
import type { LoadSpec } from '../../src/sandbox/types.js';

// A stand-in runtime: answers ready/loaded, echoes events that ask for it, and
// otherwise answers a call with the bytes of the payload file, then exits.
const RUNTIME = `
import fs from 'node:fs';
import net from 'node:net';
const ch = new net.Socket({ fd: 3, readable: true, writable: true });
ch.write(JSON.stringify({ t: 'ready', runtime: 'fuzz', version: '1', pid: process.pid }) + '\\n');
let buf = '';
ch.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const f = JSON.parse(buf.slice(0, i));
    buf = buf.slice(i + 1);
    if (f.t === 'load') ch.write('{"t":"loaded"}\\n');
    else if (f.t === 'invoke' && f.event && f.event.echo !== undefined) ch.write(JSON.stringify({ t: 'result', id: f.id, ok: true, value: f.event.echo }) + '\\n');
    else if (f.t === 'invoke') ch.write(fs.readFileSync(process.argv[2]), () => setTimeout(() => process.exit(0), 20));
  }
});
ch.on('close', () => process.exit(0));
`;

let dir: string;
let script: string;
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-fuzz-'));
  script = path.join(dir, 'runtime.mjs');
  writeFileSync(script, RUNTIME);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
});
after(() => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
  rmSync(dir, { recursive: true, force: true });
});

const spec: LoadSpec = { functionName: 'fuzz', functionVersion: 1, codeDir: '/nonexistent', entry: 'index.mjs', handler: 'handler', env: {}, memoryMb: 128, timeoutMs: 10_000, network: false };
let seq = 0;

async function sandboxWith(payload: Buffer | string): Promise<ChildRuntimeSandbox> {
  const file = path.join(dir, `payload-${seq}`);
  writeFileSync(file, payload);
  const sb = new ChildRuntimeSandbox(`fz${seq++}`, 'process', { runtime: 'node', memoryMb: 128, network: false }, {
    placeCode: async () => '/nonexistent/index.mjs',
    memory: async () => ({ current: 0, peak: 0 }),
    cleanup: async () => rmSync(file, { force: true }),
  });
  await sb.start({ command: process.execPath, args: [script, file], env: {} });
  await sb.load(spec);
  return sb;
}

const call = (sb: ChildRuntimeSandbox, event: unknown = {}, requestId = 'r1') => sb.invoke({ requestId, event, deadlineMs: Date.now() + 20_000, coldStart: false });

const frameLike = fc.record(
  {
    t: fc.constantFrom('ready', 'loaded', 'preloaded', 'load_error', 'preload_error', 'result', 'log', 'fatal', 'nope', ''),
    id: fc.oneof(fc.constant('r1'), fc.constant(null), fc.string(), fc.integer(), fc.constant('r2')),
    ok: fc.oneof(fc.boolean(), fc.constant('yes')),
    value: fc.jsonValue({ maxDepth: 3 }),
    ms: fc.oneof(fc.double(), fc.string()),
    stream: fc.oneof(fc.constantFrom('stdout', 'stderr'), fc.string()),
    data: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
    error: fc.oneof(fc.record({ type: fc.string(), message: fc.string() }), fc.constant(null), fc.string()),
  },
  { requiredKeys: [] },
);
const line = fc.oneof(
  frameLike.map((f) => JSON.stringify(f) + '\n'),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) + '\n'),
  frameLike.chain((f) => fc.nat().map((n) => JSON.stringify(f).slice(0, n % (JSON.stringify(f).length + 1)))),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.constantFrom('{"t":"fatal"}\n', 'null\n', '{"t":"log","id":null,"data":5}\n', '\n\n', '{"t":"result","id":"r1"}\n', '{"t":"result","id":"zz","ok":true}\n'),
);

test('any bytes on fd 3: the call ends with an outcome, only that sandbox dies, a healthy one keeps answering', async () => {
  const healthy = await sandboxWith('');
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 8 }), async (lines) => {
        const sb = await sandboxWith(lines.join(''));
        try {
          const out = await call(sb);
          assert.ok(out.ok || out.error?.type === 'SandboxCrashed', JSON.stringify(out.error));
          const ok = await call(healthy, { echo: seq }, `h${seq}`);
          assert.equal(ok.ok, true, JSON.stringify(ok.error));
          assert.deepEqual(ok.value, seq);
        } finally {
          await sb.destroy();
        }
      }),
      { numRuns: 40 },
    );
  } finally {
    await healthy.destroy();
  }
  assert.deepEqual(uncaught, []);
});

test('the attacks of issue 9 each kill the sandbox with a protocol violation, and say so', async () => {
  for (const attack of ['{"t":"fatal"}\n', 'null\n', '{"t":"log","id":null,"data":5}\n', '{"t":"result","id":"forged","ok":true}\n', 'not json\n']) {
    const sb = await sandboxWith(attack);
    const out = await call(sb);
    assert.equal(out.error?.type, 'SandboxCrashed', attack);
    assert.match(out.error!.message, /protocol/, attack);
    assert.equal(sb.alive, false, attack);
    await sb.destroy();
  }
  assert.deepEqual(uncaught, []);
});

test('a line longer than the frame cap kills the sandbox, with or without its newline', async () => {
  for (const tail of ['', '\n']) {
    const sb = await sandboxWith('{"t":"log","id":"r1","stream":"stdout","data":"' + 'x'.repeat(MAX_FRAME_BYTES) + '"}' + tail);
    const out = await call(sb);
    assert.equal(out.error?.type, 'SandboxCrashed');
    assert.match(out.error!.message, /longer than/);
    await sb.destroy();
  }
  assert.equal(bufferBudget.usedBytes, 0, 'buffered partial frames were released');
});

test('an event too deep to serialize fails its call without harming the sandbox', async () => {
  const sb = await sandboxWith('');
  try {
    let deep: unknown = [];
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const out = await call(sb, deep, 'deep');
    assert.equal(out.error?.type, 'SandboxCrashed');
    assert.match(out.error!.message, /could not be sent/);
    assert.equal(sb.alive, true);
    const next = await call(sb, { echo: 'fine' }, 'after');
    assert.deepEqual(next.value, 'fine');
  } finally {
    await sb.destroy();
  }
});

test('the channel alone: arbitrary chunks never throw; what it delivers is a valid frame', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(line, fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1'))), { maxLength: 12 }), fc.boolean(), (chunks, throwing) => {
      const stream = new PassThrough();
      const frames: RuntimeFrame[] = [];
      let closed: string | undefined;
      const ch = new Channel(
        stream,
        (f) => {
          frames.push(f);
          if (throwing && f.t === 'log') throw new Error('listener bug');
        },
        (r) => (closed = r),
      );
      for (const c of chunks) stream.emit('data', Buffer.from(c, 'latin1'));
      for (const f of frames) assert.ok(typeof f.t === 'string');
      if (throwing && frames.some((f) => f.t === 'log')) assert.match(closed ?? '', /protocol violation/);
      ch.close('done');
      assert.equal(bufferBudget.usedBytes, 0);
    }),
    { numRuns: 500 },
  );
});
