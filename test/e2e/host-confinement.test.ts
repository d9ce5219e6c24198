// What a process-tier sandbox cannot reach on its host, through real servers:
// host Unix-domain sockets (without network), another server's sandboxes (uids
// are unique host-wide), and other local users cannot read deployed code.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UID_FIRST } from '../../src/sandbox/uids.js';
import { deployCode, invoke, sleep, startServer, type TestServer } from '../helpers/server.js';

const PROBE = `
import net from 'node:net';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export async function handler(e) {
  if (e.try === 'unix') {
    return new Promise((res) => {
      const s = net.connect(e.path);
      s.on('connect', () => { s.end(); res({ connected: true }); });
      s.on('error', (err) => res({ connected: false, code: err.code }));
      setTimeout(() => res({ connected: false, code: 'TIMEOUT' }), 3000);
    });
  }
  if (e.try === 'signal') {
    try { process.kill(e.pid, 0); return { signalled: true }; } catch (err) { return { signalled: false, code: err.code }; }
  }
  await sleep(e.sleepMs ?? 0);
  return { uid: process.getuid(), pid: process.pid, cwd: process.cwd() };
}`;

const root = process.getuid?.() === 0;
const skip = root ? false : 'uid separation and mount namespaces need root';

describe('process tier host confinement', { skip }, () => {
  let a: TestServer;
  let b: TestServer;
  const cleanups: (() => void)[] = [];
  before(async () => {
    a = await startServer({ tier: 'process' });
    b = await startServer({ tier: 'process' });
    for (const s of [a, b]) {
      await deployCode(s, 'probe', PROBE, { concurrency: 10 });
      await deployCode(s, 'netprobe', PROBE, { network: true });
    }
  });
  after(async () => {
    for (const c of cleanups) c();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  /** A world-writable Unix socket server in a fresh dir under `parent`, as PostgreSQL's is. */
  async function socketIn(parent: string): Promise<string> {
    const dir = mkdtempSync(path.join(parent, 'lamina-test-sock-'));
    chmodSync(dir, 0o755);
    const file = path.join(dir, 's.sock');
    const server = net.createServer((c) => c.end());
    await new Promise<void>((r) => server.listen(file, () => r()));
    chmodSync(file, 0o777);
    cleanups.push(() => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return file;
  }

  test('without network, host Unix sockets in /tmp and /run are out of reach; with network the same sockets answer', async () => {
    const sockets = [await socketIn(os.tmpdir()), await socketIn('/run')];
    if (os.tmpdir() !== '/tmp') sockets.push(await socketIn('/tmp'));
    for (const p of sockets) {
      const denied = await invoke(a, 'probe', { try: 'unix', path: p });
      assert.equal(denied.status, 200, denied.text);
      assert.equal(denied.body.connected, false, `${p} reached without network`);
      const control = await invoke(a, 'netprobe', { try: 'unix', path: p });
      assert.equal(control.body.connected, true, `control: ${p} should answer a function with network (${control.text})`);
    }
  });

  test('two servers on one host never give two live sandboxes the same uid', async () => {
    // Slow calls in flight on both servers: their instances and pre-started sandboxes are all alive at once.
    const inflight = [a, b].flatMap((s) => Array.from({ length: 3 }, () => invoke(s, 'probe', { sleepMs: 2000 })));
    await sleep(1000);
    const uidsOf = (s: TestServer) => {
      const out = new Map<number, number>();
      for (const pid of s.childPids()) {
        try {
          const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
          if (m && Number(m[1]) !== 0) out.set(pid, Number(m[1]));
        } catch {
          /* exited meanwhile */
        }
      }
      return out;
    };
    const [ua, ub] = [uidsOf(a), uidsOf(b)];
    const replies = await Promise.all(inflight);
    for (const r of replies) assert.equal(r.status, 200, r.text);
    assert.ok(ua.size >= 2 && ub.size >= 2, `several sandboxes per server (${ua.size}, ${ub.size})`);
    assert.equal(new Set(ua.values()).size, ua.size, 'one uid per sandbox of a');
    assert.equal(new Set(ub.values()).size, ub.size, 'one uid per sandbox of b');
    const inB = new Set(ub.values());
    for (const u of ua.values()) {
      assert.ok(u >= UID_FIRST, `uid ${u} is in the host-wide range`);
      assert.ok(!inB.has(u), `uid ${u} used by both servers`);
    }
    // And so a function of one server cannot signal the other's sandbox.
    const r = await invoke(a, 'probe', { try: 'signal', pid: [...ub.keys()][0] });
    assert.equal(r.body.signalled, false, r.text);
    assert.equal(r.body.code, 'EPERM');
  });

  test("sandbox and run dirs are private: unguessable names, 0700 to the sandbox's uid; lamina.db is 0600", async () => {
    const who = (await invoke(a, 'probe', {})).body as { uid: number; cwd: string };
    const sandboxDir = path.dirname(who.cwd);
    const runRoot = path.dirname(sandboxDir);
    const st = statSync(sandboxDir);
    assert.equal(st.mode & 0o777, 0o700, 'sandbox dir mode');
    assert.equal(st.uid, who.uid, "owned by the sandbox's uid");
    assert.match(path.basename(sandboxDir), /-[A-Za-z0-9_-]{12}$/, 'a random suffix');
    assert.equal(statSync(runRoot).mode & 0o777, 0o711, 'run dir: traversable, not listable');
    for (const f of ['lamina.db', 'token']) assert.equal(statSync(path.join(a.dataDir, f)).mode & 0o777, 0o600, f);
    // Another local user can neither list the run dir nor read the code.
    const asNobody = (cmd: string[]) => spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', ...cmd], { encoding: 'utf8' });
    assert.notEqual(asNobody(['ls', runRoot]).status, 0, 'nobody lists the run dir');
    const cat = asNobody(['cat', path.join(sandboxDir, 'code', 'index.mjs')]);
    assert.notEqual(cat.status, 0, 'nobody reads the code');
    assert.match(cat.stderr, /Permission denied/);
    // The control: root reads it, so the path is right.
    assert.equal(spawnSync('cat', [path.join(sandboxDir, 'code', 'index.mjs')]).status, 0);
  });
});
