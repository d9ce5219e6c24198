// What a function inside a container can and cannot see or touch. These run with
// Node's permission model OFF, so every refusal here is the container's own.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { nodeBinds } from '../../src/sandbox/container/bwrap-args.js';
import { alive, call, cgroupPids, freshWorks, openBackend, start, type Harness } from './helpers.js';

let h: Harness | undefined;
let skip: string | false = false;

before(async () => {
  const r = await openBackend({ nodePermissions: false });
  if (typeof r === 'string') skip = r;
  else h = r;
});
after(() => h?.close());

describe('container isolation', () => {
  test('probe says which cgroup version it uses', async (t) => {
    if (skip) return t.skip(skip);
    const p = await h!.backend.probe();
    assert.ok(p.ok);
    assert.match(p.reason, /cgroup v[12]/);
  });

  test('a normal call returns the value and its logs', async (t) => {
    if (skip) return t.skip(skip);
    const sb = await start(t, h!, `export async function handler(event, context) { console.log('hi', event.a); return { sum: event.a + 1, fn: context.functionName, uid: process.getuid(), cwd: process.cwd() }; }`);
    const o = await call(sb, { a: 41 });
    assert.equal(o.ok, true, JSON.stringify(o.error));
    assert.deepEqual(o.value, { sum: 42, fn: 'f', uid: 65534, cwd: '/tmp' });
    assert.match(o.logs, /hi 41/);
    const s = await sb.stats();
    assert.ok(s.memoryBytes > 0 && s.maxMemoryBytes >= s.memoryBytes);
    assert.ok((s.cpuMs ?? 0) > 0);
  });

  test('process.env is exactly the manifest env', async (t) => {
    if (skip) return t.skip(skip);
    const sb = await start(t, h!, 'export const handler = () => ({ ...process.env });', { env: { GREETING: 'hi', B: '2' } });
    const o = await call(sb);
    assert.deepEqual(o.value, { GREETING: 'hi', B: '2' });
  });

  test("the root holds only the runtime's files; host secrets are absent", async (t) => {
    if (skip) return t.skip(skip);
    const sb = await start(
      t,
      h!,
      `import fs from 'node:fs';
       const tryRead = (p) => { try { fs.readFileSync(p); return 'read'; } catch (e) { return e.code; } };
       export const handler = () => ({
         root: fs.readdirSync('/').sort(),
         etc: fs.readdirSync('/etc').sort(),
         shadow: tryRead('/etc/shadow'),
         hostRoot: tryRead('/root/.bashrc'),
         sys: tryRead('/sys/kernel/notes'),
         task: fs.readdirSync('/var/task'),
         bin: fs.existsSync('/bin/sh') || fs.existsSync('/usr/bin/env'),
       });`,
    );
    const v = (await call(sb)).value as Record<string, unknown>;
    // Exactly: node's and its libraries' top directories, plus what the sandbox makes itself.
    const tops = new Set(['dev', 'etc', 'proc', 'tmp', 'var', ...nodeBinds().map(([, dest]) => dest.split('/')[1]!)]);
    assert.deepEqual(v.root, [...tops].sort());
    assert.deepEqual(v.etc, ['group', 'hosts', 'nsswitch.conf', 'passwd']);
    assert.equal(v.shadow, 'ENOENT');
    assert.equal(v.hostRoot, 'ENOENT');
    assert.equal(v.sys, 'ENOENT');
    assert.deepEqual(v.task, ['index.mjs']);
    assert.equal(v.bin, false, 'no shell or other host binaries inside');
  });

  test('the root is read-only: writes succeed only in /tmp', async (t) => {
    if (skip) return t.skip(skip);
    const sb = await start(
      t,
      h!,
      `import fs from 'node:fs';
       const tryWrite = (p) => { try { fs.writeFileSync(p, 'x'); return 'ok'; } catch (e) { return e.code; } };
       export const handler = () => Object.fromEntries(['/x', '/var/task/x', '/var/runtime/x', '/etc/passwd', '/usr/x', '/dev/x', '/dev/shm/x', '/proc/x', '/tmp/x'].map((p) => [p, tryWrite(p)]));`,
    );
    const v = (await call(sb)).value as Record<string, string>;
    assert.equal(v['/tmp/x'], 'ok');
    for (const [p, r] of Object.entries(v)) if (p !== '/tmp/x') assert.notEqual(r, 'ok', `${p} must not be writable`);
    assert.equal(v['/x'], 'EROFS');
    assert.equal(v['/var/task/x'], 'EROFS');
    assert.equal(v['/dev/x'], 'EROFS');
  });

  test('/tmp is capped: writing past it fails with ENOSPC and the sandbox survives', async (t) => {
    if (skip) return t.skip(skip);
    const sb = await start(
      t,
      h!,
      `import fs from 'node:fs';
       export const handler = (e) => {
         if (e.cleanup) { fs.rmSync('/tmp/fill'); return { size: fs.statfsSync('/tmp').blocks * 4096 }; }
         const chunk = Buffer.alloc(1 << 20, 1);
         const fd = fs.openSync('/tmp/fill', 'w');
         let mb = 0;
         try { for (;;) { fs.writeSync(fd, chunk); mb++; } } catch (err) { return { mb, code: err.code }; } finally { fs.closeSync(fd); }
       };`,
    );
    const o = await call(sb, {}, 20_000);
    const v = o.value as { mb: number; code: string };
    assert.equal(v.code, 'ENOSPC');
    assert.ok(v.mb >= 60 && v.mb <= 64, `filled ${v.mb} MiB of a 64 MiB /tmp`);
    const again = await call(sb, { cleanup: true });
    assert.equal(again.ok, true);
    assert.equal((again.value as { size: number }).size, 64 * 1024 * 1024);
  });

  test('no network without network: true; the host network with it', async (t) => {
    if (skip) return t.skip(skip);
    const server = net.createServer((s) => s.end('hello from the host'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => server.close());
    const port = (server.address() as net.AddressInfo).port;
    const src = `import net from 'node:net';
      export const handler = (e) => new Promise((resolve) => {
        const s = net.connect(e.port, '127.0.0.1');
        let data = '';
        s.on('data', (d) => (data += d));
        s.on('end', () => resolve({ data }));
        s.on('error', (err) => resolve({ error: err.code }));
        s.setTimeout(2000, () => { s.destroy(); resolve({ error: 'timeout' }); });
      });`;
    const off = await start(t, h!, src);
    const v1 = (await call(off, { port })).value as { error?: string };
    assert.ok(v1.error, 'the connection must fail');
    const on = await start(t, h!, src, { network: true });
    const v2 = (await call(on, { port })).value as { data?: string };
    assert.equal(v2.data, 'hello from the host');
  });

  test('no capabilities, no new privileges, seccomp filter on, unprivileged uid', async (t) => {
    if (skip) return t.skip(skip);
    const sb = await start(t, h!, `import fs from 'node:fs'; export const handler = () => fs.readFileSync('/proc/self/status', 'utf8');`);
    const status = (await call(sb)).value as string;
    assert.match(status, /^Seccomp:\s+2$/m);
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    assert.match(status, /^CapEff:\s+0+$/m);
    assert.match(status, /^CapBnd:\s+0+$/m);
    assert.match(status, /^Uid:\s+65534\s/m);
    if (process.getuid?.() === 0) {
      // On the host, the sandbox runs under its own unprivileged uid, not root.
      for (const pid of cgroupPids(h!, sb)) {
        const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
        assert.ok(uid >= 300_000, `host uid of pid ${pid} is ${uid}`);
      }
    }
  });

  test('cannot see or signal anything outside its pid namespace', async (t) => {
    if (skip) return t.skip(skip);
    const sb = await start(
      t,
      h!,
      `import fs from 'node:fs';
       const sig = (pid, s) => { try { process.kill(pid, s); return 'sent'; } catch (e) { return e.code; } };
       export const handler = (e) => ({
         pids: fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).map(Number),
         self: process.pid,
         server: sig(e.server, 0),
         serverKill: sig(e.server, 'SIGKILL'),
         init: sig(1, 'SIGKILL'),
       });`,
    );
    const v = (await call(sb, { server: process.pid })).value as { pids: number[]; self: number; server: string; serverKill: string; init: string };
    assert.equal(v.server, 'ESRCH');
    assert.equal(v.serverKill, 'ESRCH');
    assert.ok(v.pids.length <= 3 && Math.max(...v.pids) < 10, `sees pids ${v.pids}`);
    assert.ok(!v.pids.includes(process.pid));
    // SIGKILL to the namespace's init is dropped by the kernel: the sandbox lives on, and so does everything outside.
    const o = await call(sb, { server: process.pid });
    assert.equal(o.ok, true);
    assert.ok(alive(1) && alive(process.pid));
  });

  test('a fresh sandbox works after all of the above', async (t) => {
    if (skip) return t.skip(skip);
    assert.ok(await freshWorks(t, h!));
  });
});
