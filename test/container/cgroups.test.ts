// Both cgroup implementations, driven directly with a plain `sleep` process:
// join before exec, freeze/thaw, CPU accounting, kill-all, removal. Here (cgroup
// v1 host with an empty v2 mount) v2 is exercised without controllers: freezer,
// cgroup.kill and cpu.stat are core v2 features.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openCgroups, type CgroupManager } from '../../src/sandbox/container/cgroups.js';
import { alive, call, cgroupDirs, hasBwrap, openBackend, start } from './helpers.js';

const limits = { memoryBytes: 64 << 20, pidsMax: 16, cpuShares: 128, cpuQuotaCores: 1 };
const root = process.getuid?.() === 0;
const mounts = existsSync('/proc/self/mountinfo') ? readFileSync('/proc/self/mountinfo', 'utf8') : '';

async function exercise(mgr: CgroupManager): Promise<void> {
  const cg = await mgr.create('t1', limits);
  // Joins its cgroups before exec, as the container launcher does; then spins and sleeps.
  const child = spawn('/bin/sh', ['-c', 'for f in $PROCS; do echo $$ > "$f"; done; exec /bin/sh -c "i=0; while [ \\$i -lt 200000 ]; do i=\\$((i+1)); done; exec sleep 30"'], {
    env: { PROCS: cg.procsFiles.join(' '), PATH: '/usr/bin:/bin' },
    stdio: 'ignore',
  });
  await sleep(100);
  for (const f of cg.procsFiles) assert.ok(readFileSync(f, 'utf8').includes(String(child.pid)), `pid in ${f}`);
  await cg.freeze();
  const c0 = await cg.cpuMs();
  assert.ok(c0 > 0, 'CPU time is accounted');
  await sleep(100);
  assert.equal(await cg.cpuMs(), c0, 'no CPU while frozen');
  await cg.thaw();
  const exited = new Promise((r) => child.once('exit', r));
  cg.killAll();
  await exited;
  assert.equal(alive(child.pid!), false);
  await cg.remove();
  for (const d of cg.dirs) assert.equal(existsSync(d), false, `${d} removed`);
  const parents = mgr.parents;
  await mgr.close();
  for (const p of parents) assert.equal(existsSync(p), false, `${p} removed`);
}

test('cgroup v1: limits, freeze, cpu, kill, remove', { skip: !root || !/ - cgroup cgroup .*\bmemory\b/.test(mounts) ? 'needs root and cgroup v1' : false }, async () => {
  const mgr = await openCgroups({ version: 1 });
  assert.equal(mgr.version, 1);
  await exercise(mgr);
});

test('cgroup v2: freeze, cpu, kill, remove (controllers where the mount offers them)', { skip: !root || !/ - cgroup2 /.test(mounts) ? 'needs root and a cgroup v2 mount' : false }, async () => {
  const mgr = await openCgroups({ version: 2, requireControllers: [] });
  assert.equal(mgr.version, 2);
  await exercise(mgr);
});

test('a sandbox cgroup left non-empty is emptied and removed by close', { skip: !root ? 'needs root' : false }, async () => {
  const mgr = await openCgroups();
  const cg = await mgr.create('t2', limits);
  const child = spawn('/bin/sh', ['-c', 'for f in $PROCS; do echo $$ > "$f"; done; exec sleep 30'], { env: { PROCS: cg.procsFiles.join(' ') }, stdio: 'ignore' });
  await sleep(50);
  const dir = cg.dirs[0]!;
  await mgr.close();
  assert.equal(existsSync(dir), false);
  assert.equal(existsSync(path.dirname(dir)), false);
  await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
  assert.equal(child.signalCode, 'SIGKILL');
});

test('the container tier runs on cgroup v2 too (pause, cpu time, timeout kill, cleanup)', { skip: !root || !/ - cgroup2 /.test(mounts) || !hasBwrap() ? 'needs root, bubblewrap and a cgroup v2 mount' : false }, async (t) => {
  const h = await openBackend({ cgroups: { version: 2, requireControllers: [] } });
  if (typeof h === 'string') return t.skip(h);
  t.after(() => h.close());
  assert.equal(h.backend.cgroups!.version, 2);
  const sb = await start(t, h, `let n = 0; export const handler = (e) => { if (e.spin) for (;;); return ++n; };`);
  assert.equal((await call(sb)).value, 1);
  await sb.pause!();
  assert.match(readFileSync(path.join(cgroupDirs(h, sb)[0]!, 'cgroup.events'), 'utf8'), /^frozen 1$/m);
  const c0 = (await sb.stats()).cpuMs!;
  await sleep(200);
  assert.equal((await sb.stats()).cpuMs, c0);
  await sb.resume!();
  assert.equal((await call(sb)).value, 2);
  const dirs = cgroupDirs(h, sb);
  assert.equal((await call(sb, { spin: true }, 300)).error?.type, 'Timeout');
  await sb.destroy();
  assert.deepEqual(dirs.filter(existsSync), []);
});
