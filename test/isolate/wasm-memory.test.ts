// The isolate tier's memory cap covers WebAssembly memory: V8's heap limit does
// not count it, so each isolate host runs in a cgroup sized to its isolates'
// caps plus overhead (where cgroups exist). A function growing wasm memory in a
// loop dies alone with 502 MemoryLimitExceeded; the server and other functions
// keep serving.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { deployCode, invoke, call, startServer, type TestServer } from '../helpers/server.js';

const GROW = `
export async function handler(e) {
  if (e.ok) return { ok: true };
  const mem = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
  // 1 MiB a step, each page touched so it is really resident; up to 3 GB.
  for (let i = 0; i < 3000; i++) {
    mem.grow(16);
    new Uint8Array(mem.buffer).fill(1, mem.buffer.byteLength - 16 * 65536);
  }
  return { bytes: mem.buffer.byteLength };
}`;

const root = process.getuid?.() === 0;
const cgroups = existsSync('/sys/fs/cgroup/memory') || existsSync('/sys/fs/cgroup/cgroup.controllers');
const skip = !root ? 'isolate host cgroups need root' : !cgroups ? 'no cgroup file system' : false;

let s: TestServer;
before(async () => {
  if (skip) return;
  s = await startServer({ tier: 'isolate' });
  await deployCode(s, 'wasm', GROW, { sandbox: 'isolate', memoryMb: 128 });
  await deployCode(s, 'bystander', 'export const handler = async (e) => ({ echo: e });', { sandbox: 'isolate' });
});
after(() => s?.stop());

test('a 128 MB isolate function growing WebAssembly memory is killed with 502 MemoryLimitExceeded; the rest keeps serving', { skip }, async () => {
  const warm = await invoke(s, 'bystander', { n: 1 });
  assert.equal(warm.status, 200, warm.text);
  const r = await invoke(s, 'wasm', {});
  assert.equal(r.status, 502, r.text);
  assert.equal(r.body.error.type, 'MemoryLimitExceeded');
  assert.match(r.body.error.message, /memory limit/);
  // The server, another function and the same function (on a fresh host) all answer.
  assert.equal((await call(`${s.url}/healthz`)).status, 200);
  const other = await invoke(s, 'bystander', { n: 2 });
  assert.equal(other.status, 200, other.text);
  assert.deepEqual(other.body, { echo: { n: 2 } });
  const again = await invoke(s, 'wasm', { ok: true });
  assert.equal(again.status, 200, again.text);
  assert.equal(s.proc.exitCode, null, 'the server is still running');
});
