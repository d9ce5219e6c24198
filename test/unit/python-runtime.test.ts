// The Python runtime speaks the same protocol as the Node one: driven here by
// the worker's own ChildRuntimeSandbox with a bare launch (no isolation tier).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ChildRuntimeSandbox } from '../../src/sandbox/child-runtime.js';
import { placeCodeFiles } from '../../src/sandbox/code.js';
import type { LoadSpec } from '../../src/sandbox/types.js';
import { runtimeFile } from '../../src/util/paths.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'lamina-py-'));
after(() => rmSync(work, { recursive: true, force: true }));

async function start(source: string, file: string, handler: string) {
  const src = mkdtempSync(path.join(work, 'src-'));
  writeFileSync(path.join(src, file), source);
  const codeDir = mkdtempSync(path.join(work, 'code-'));
  const sb = new ChildRuntimeSandbox('py-test', 'process', { runtime: 'python', memoryMb: 128, network: false }, {
    placeCode: async (spec) => {
      await placeCodeFiles(spec.codeDir, codeDir);
      return path.join(codeDir, spec.entry);
    },
    memory: async () => ({ current: 0, peak: 0 }),
    cleanup: async () => undefined,
  });
  await sb.start({ command: '/usr/bin/python3', args: ['-I', runtimeFile('python')], env: {} });
  const spec: LoadSpec = { functionName: 'py', functionVersion: 1, codeDir: src, entry: file, handler, env: { GREETING: 'hej' }, memoryMb: 128, timeoutMs: 2000, network: false };
  return { sb, load: () => sb.load(spec) };
}

const call = (sb: ChildRuntimeSandbox, event: unknown, timeoutMs = 2000) => sb.invoke({ requestId: `r${Math.random()}`, event, deadlineMs: Date.now() + timeoutMs, coldStart: false });

test("OpenLambda's def f(event) and Lambda's def handler(event, context)", async () => {
  const a = await start('import os\ndef f(event):\n    print("got", event)\n    return {"echo": event, "greeting": os.environ["GREETING"], "env": sorted(os.environ)}\n', 'f.py', 'f');
  await a.load();
  const r = await call(a.sb, { x: 1 });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.deepEqual(r.value, { echo: { x: 1 }, greeting: 'hej', env: ['GREETING'] });
  assert.equal(r.logs, 'got {\'x\': 1}\n');
  await a.sb.destroy();

  const b = await start('def handler(event, context):\n    return {"name": context.function_name, "left": context.get_remaining_time_in_millis() > 0, "id": context.requestId}\n', 'main.py', 'handler');
  await b.load();
  const r2 = await call(b.sb, {});
  assert.equal(r2.ok, true, JSON.stringify(r2.error));
  assert.equal((r2.value as { name: string }).name, 'py');
  assert.equal((r2.value as { left: boolean }).left, true);
  await b.sb.destroy();
});

test('errors: a raise is a HandlerError with a traceback; an import error fails the load; a timeout kills', async () => {
  const a = await start('def f(event):\n    if event.get("loop"):\n        while True: pass\n    raise ValueError("bad " + str(event["n"]))\n', 'f.py', 'f');
  await a.load();
  const r = await call(a.sb, { n: 3 });
  assert.equal(r.ok, false);
  assert.equal(r.error?.type, 'HandlerError');
  assert.equal(r.error?.message, 'bad 3');
  assert.match(r.error?.stack ?? '', /ValueError/);
  const t = await call(a.sb, { loop: true }, 300);
  assert.equal(t.error?.type, 'Timeout');
  assert.equal(a.sb.alive, false);

  const b = await start('import not_a_module\ndef f(e):\n    return 1\n', 'f.py', 'f');
  await assert.rejects(b.load(), /not_a_module/);
  assert.equal(b.sb.alive, false);
});
