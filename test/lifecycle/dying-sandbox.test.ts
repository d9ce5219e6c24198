// A sandbox being killed takes no new call. Found by the soak: a call whose
// answer arrived just after its deadline (the kill for its timeout already
// under way) left its instance looking alive, the worker gave that instance the
// next call, and the next call failed with the first one's Timeout ("the call
// exceeded its timeout (deadline <before it was even sent>)") a few hundred ms
// in. Here the kill takes 300 ms to land, as a container's may, and the answer
// comes inside that window.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ChildRuntimeSandbox } from '../../src/sandbox/child-runtime.js';
import type { LoadSpec } from '../../src/sandbox/types.js';

// A minimal runtime: answers each invoke after event.after ms.
const RUNTIME = `
import net from 'node:net';
const ch = new net.Socket({ fd: 3, readable: true, writable: true });
ch.write(JSON.stringify({ t: 'ready', runtime: 'test', version: '1', pid: process.pid }) + '\\n');
let buf = '';
ch.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const f = JSON.parse(buf.slice(0, i));
    buf = buf.slice(i + 1);
    if (f.t === 'load') ch.write('{"t":"loaded"}\\n');
    else if (f.t === 'invoke') setTimeout(() => ch.write(JSON.stringify({ t: 'result', id: f.id, ok: true, value: 'done' }) + '\\n'), f.event.after);
  }
});
ch.on('close', () => process.exit(0));
`;

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-dying-'));
  writeFileSync(path.join(dir, 'runtime.mjs'), RUNTIME);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const spec: LoadSpec = { functionName: 'f', functionVersion: 1, codeDir: '/nonexistent', entry: 'index.mjs', handler: 'handler', env: {}, timeoutMs: 5000, memoryMb: 128, network: false };

test('a sandbox killed for a timeout is not alive and refuses a new call, even if the late call answers before it is gone', async () => {
  const sb = new ChildRuntimeSandbox('dying', 'process', { runtime: 'node', memoryMb: 128, network: false }, {
    placeCode: async () => '/nonexistent/index.mjs',
    memory: async () => ({ current: 0, peak: 0 }),
    cleanup: async () => undefined,
    // The kill lands 300 ms after it is asked for.
    kill: (child: ChildProcess) => void setTimeout(() => child.kill('SIGKILL'), 300),
  });
  await sb.start({ command: process.execPath, args: [path.join(dir, 'runtime.mjs')], env: {} });
  await sb.load(spec);
  try {
    // Deadline in 100 ms, answer at 150 ms: inside the kill's window.
    const first = await sb.invoke({ requestId: 'a', event: { after: 150 }, deadlineMs: Date.now() + 100, coldStart: false });
    assert.ok(first.ok || first.error?.type === 'Timeout', JSON.stringify(first));
    assert.equal(sb.alive, false, 'a sandbox on its way out is not alive (the worker must not give it another call)');
    const t0 = Date.now();
    const second = await sb.invoke({ requestId: 'b', event: { after: 10 }, deadlineMs: Date.now() + 5000, coldStart: false });
    assert.equal(second.ok, false);
    assert.equal(second.error!.type, 'SandboxCrashed', `the second call is refused as not running, never given the first call's Timeout: ${JSON.stringify(second.error)}`);
    assert.ok(Date.now() - t0 < 1000, 'refused at once');
  } finally {
    await sb.destroy();
  }
});
