// Python functions run on the container tier (the only tier that confines a
// Python interpreter), through the same worker protocol as Node.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { deploy, deployRaw, invoke, makeFunction, startServer, testTiers, type TestServer } from '../helpers/server.js';

describe('python functions [container]', { skip: !testTiers().includes('container') && 'container tier not under test' }, () => {
  let s: TestServer;
  const dirs: string[] = [];
  const fn = (files: Record<string, string>, manifest: Record<string, unknown>) => {
    const dir = makeFunction(files, { runtime: 'python', ...manifest });
    dirs.push(path.dirname(dir));
    return dir;
  };
  before(async () => {
    s = await startServer({ tier: 'container' });
  });
  after(async () => {
    await s.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("OpenLambda's f.py with def f(event), warm on the second call", async () => {
    await deploy(s, fn({ 'f.py': 'import os\n\ndef f(event):\n    print("hello from python")\n    return {"sum": event["a"] + event["b"], "env": dict(os.environ)}\n' }, { name: 'pyadd', env: { MODE: 'test' } }), 'pyadd');
    const r = await invoke(s, 'pyadd', { a: 2, b: 3 });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { sum: 5, env: { MODE: 'test' } });
    const again = await invoke(s, 'pyadd', { a: 1, b: 1 });
    assert.equal(again.headers.get('x-lamina-cold-start'), '0');
    assert.equal(again.headers.get('x-lamina-instance'), r.headers.get('x-lamina-instance'));
  });

  test('def handler(event, context), a raise, a timeout, and no host files', async () => {
    const code = [
      'import time',
      'def handler(event, context):',
      '    if event.get("raise"): raise RuntimeError("py boom")',
      '    if event.get("loop"):',
      '        while True: pass',
      '    if event.get("read"):',
      '        try:',
      '            return {"read": open(event["read"]).read()[:20]}',
      '        except OSError as e:',
      '            return {"error": type(e).__name__}',
      '    return {"fn": context.function_name, "left": context.get_remaining_time_in_millis() > 0}',
    ].join('\n');
    await deploy(s, fn({ 'main.py': code }, { name: 'pyctx', entry: 'main.py', handler: 'handler', timeoutMs: 1000 }), 'pyctx');
    assert.deepEqual((await invoke(s, 'pyctx', {})).body, { fn: 'pyctx', left: true });
    // The stack goes only to a caller holding the admin token (anonymous callers get type and message).
    const boom = await invoke(s, 'pyctx', { raise: true }, { headers: { authorization: `Bearer ${s.token}` } });
    assert.equal(boom.status, 500);
    assert.equal(boom.body.error.type, 'HandlerError');
    assert.match(boom.body.error.stack, /RuntimeError: py boom/);
    const anonymous = await invoke(s, 'pyctx', { raise: true });
    assert.equal(anonymous.body.error.stack, undefined);
    assert.equal((await invoke(s, 'pyctx', { loop: true })).status, 504);
    assert.deepEqual((await invoke(s, 'pyctx', { read: '/etc/shadow' })).body, { error: 'FileNotFoundError' });
    assert.equal((await invoke(s, 'pyctx', {})).status, 200);
  });

  test('a Python function on a tier that cannot confine it is refused at deploy', async () => {
    const r = await deployRaw(s, fn({ 'f.py': 'def f(e):\n    return 1\n' }, { name: 'pyproc', sandbox: 'process' }), 'pyproc');
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.error.message, /"sandbox": "process" cannot run python.*"auto" or "container"/);
  });
});
