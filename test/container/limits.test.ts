// Resource limits of the container tier (cgroups) and the lifecycle around them:
// memory bombs, endless loops, task caps, pause/resume, cleanup. Timings are
// printed, not asserted.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, call, cgroupDirs, cgroupPids, fnDir, freshWorks, loadSpec, openBackend, start, type Harness } from './helpers.js';

let h: Harness | undefined;
let skip: string | false = false;

before(async () => {
  const r = await openBackend();
  if (typeof r === 'string') skip = r;
  else h = r;
});
after(() => h?.close());

const ms = (x: number) => `${x.toFixed(1)} ms`;

describe('container limits', () => {
  test('a JS heap bomb ends as MemoryLimitExceeded', async (t) => {
    if (skip) return t.skip(skip);
    const sb = await start(t, h!, 'export const handler = () => { const a = []; for (;;) a.push(new Array(1e5).fill(Math.random())); };');
    const o = await call(sb, {}, 20_000);
    assert.equal(o.error?.type, 'MemoryLimitExceeded', JSON.stringify(o.error));
    assert.equal(sb.alive, false);
    assert.ok(await freshWorks(t, h!));
  });

  test('an off-heap (Buffer) bomb is caught by the memory cgroup', async (t) => {
    if (skip) return t.skip(skip);
    const sb = await start(t, h!, 'export const handler = () => { const a = []; for (;;) a.push(Buffer.alloc(8 << 20, 1)); };');
    const o = await call(sb, {}, 20_000);
    assert.equal(o.error?.type, 'MemoryLimitExceeded', JSON.stringify(o.error));
    assert.ok(await freshWorks(t, h!));
  });

  test('an endless loop hits its deadline; the cgroup and its processes are gone afterwards', async (t) => {
    if (skip) return t.skip(skip);
    const sb = await start(t, h!, 'export const handler = () => { for (;;); };');
    const dirs = cgroupDirs(h!, sb);
    const pids = cgroupPids(h!, sb);
    assert.ok(pids.length >= 2 && dirs.every(existsSync));
    const o = await call(sb, {}, 300);
    assert.equal(o.error?.type, 'Timeout');
    await sb.destroy();
    assert.deepEqual(dirs.filter(existsSync), []);
    assert.deepEqual(pids.filter(alive), []);
    assert.ok(await freshWorks(t, h!));
  });

  test('limits are written to the cgroup', async (t) => {
    if (skip) return t.skip(skip);
    const sb = await start(t, h!, 'export const handler = () => 1;', { memoryMb: 256 });
    const cg = h!.backend.cgroups!;
    const dirs = cgroupDirs(h!, sb);
    const read = (file: string) => readFileSync(path.join(dirs.find((d) => existsSync(path.join(d, file)))!, file), 'utf8').trim();
    if (cg.version === 1) {
      assert.equal(read('memory.limit_in_bytes'), String(256 << 20));
      assert.equal(read('pids.max'), '64');
      assert.equal(read('cpu.shares'), '256');
      assert.equal(read('cpu.cfs_quota_us'), '100000');
    } else {
      assert.equal(read('memory.max'), String(256 << 20));
      assert.equal(read('pids.max'), '64');
    }
  });

  test('child processes are refused by default (permission model inside the container)', async (t) => {
    if (skip) return t.skip(skip);
    const sb = await start(t, h!, `import cp from 'node:child_process'; export const handler = () => { try { cp.spawnSync(process.execPath, ['-e', '0']); return 'spawned'; } catch (e) { return e.code; } };`);
    assert.equal((await call(sb)).value, 'ERR_ACCESS_DENIED');
  });

  test('the task cap contains thread and fork bombs (permission model off)', async (t) => {
    if (skip) return t.skip(skip);
    const open = await openBackend({ nodePermissions: false });
    if (typeof open === 'string') return t.skip(open);
    t.after(() => open.close());
    // Workers are threads, and pids.max counts threads: past the cap they fail to start.
    const sb = await start(
      t,
      open,
      `import { Worker } from 'node:worker_threads';
       import cp from 'node:child_process';
       export const handler = async () => {
         const workers = [];
         let failed = 0;
         for (let i = 0; i < 80; i++) {
           try {
             const w = new Worker('setInterval(() => {}, 1000)', { eval: true, resourceLimits: { maxOldGenerationSizeMb: 4, maxYoungGenerationSizeMb: 1 } });
             const up = await new Promise((r) => { w.once('online', () => r(true)); w.once('error', () => r(false)); });
             if (up) workers.push(w); else failed++;
           } catch { failed++; }
         }
         let spawned = 0, refused = 0;
         const kids = [];
         // With the workers still holding their threads, no room is left for another process.
         for (let i = 0; i < 5; i++) {
           try {
             const c = cp.spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)'], { stdio: 'ignore' });
             const ok = await new Promise((r) => { c.once('spawn', () => r(true)); c.once('error', () => r(false)); });
             if (ok) { spawned++; kids.push(c); } else refused++;
           } catch { refused++; }
         }
         await Promise.all(workers.map((w) => w.terminate()));
         for (const c of kids) c.kill('SIGKILL');
         return { started: workers.length, failed, spawned, refused };
       };`,
      { memoryMb: 1024 },
    );
    const o = await call(sb, {}, 30_000);
    const v = o.value as { started: number; failed: number; spawned: number; refused: number } | undefined;
    console.log(`# task cap 64: ${JSON.stringify(v ?? o.error)}`);
    // Either the handler reports failures, or the runtime itself could not make a thread and died: both are contained.
    if (o.ok) {
      assert.ok(v!.started < 64 && v!.failed > 0, JSON.stringify(v));
      assert.ok(v!.refused > 0 || v!.spawned === 0, JSON.stringify(v));
    } else assert.equal(o.error?.type, 'SandboxCrashed', JSON.stringify(o.error));
    assert.ok(await freshWorks(t, open));
  });

  test('a paused sandbox accrues no CPU time; resume brings it back', async (t) => {
    if (skip) return t.skip(skip);
    const sb = await start(
      t,
      h!,
      `let spinning = false;
       export const handler = () => {
         if (!spinning) { spinning = true; setInterval(() => { const end = Date.now() + 20; while (Date.now() < end); }, 25); }
         return 'ok';
       };`,
    );
    assert.equal((await call(sb)).value, 'ok');
    const cpu = async () => (await sb.stats()).cpuMs!;
    let c0 = await cpu();
    await sleep(500);
    const running = (await cpu()) - c0;
    let t0 = performance.now();
    await sb.pause!();
    const pauseMs = performance.now() - t0;
    c0 = await cpu();
    await sleep(500);
    const paused = (await cpu()) - c0;
    t0 = performance.now();
    await sb.resume!();
    const resumeMs = performance.now() - t0;
    const o = await call(sb);
    console.log(`# cpu over 500 ms: running ${ms(running)}, paused ${ms(paused)}; pause ${ms(pauseMs)}, resume ${ms(resumeMs)}`);
    assert.ok(running > 200, `the spinner should use CPU (${running} ms)`);
    assert.ok(paused < 2, `a paused sandbox used ${paused} ms of CPU`);
    assert.equal(o.value, 'ok');
  });

  test('pre-started then loaded: timings and idle memory (printed)', async (t) => {
    if (skip) return t.skip(skip);
    const code = fnDir('export const handler = (e) => e;');
    const starts: number[] = [];
    const loads: number[] = [];
    const firsts: number[] = [];
    const idle: number[] = [];
    for (let i = 0; i < 5; i++) {
      let t0 = performance.now();
      const sb = await h!.backend.create({ runtime: 'node', memoryMb: 128, network: false });
      starts.push(performance.now() - t0);
      t.after(() => sb.destroy());
      await sleep(50);
      idle.push((await sb.stats()).memoryBytes);
      t0 = performance.now();
      await sb.load(loadSpec(code));
      loads.push(performance.now() - t0);
      t0 = performance.now();
      const o = await call(sb, { i });
      firsts.push(performance.now() - t0);
      assert.deepEqual(o.value, { i });
      await sb.destroy();
    }
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
    console.log(`# container start (bwrap + node, to ready) median ${ms(med(starts))}; load into a pre-started one ${ms(med(loads))}; first call ${ms(med(firsts))}; idle cgroup memory ${(med(idle) / 1048576).toFixed(1)} MiB`);
  });

  test('close removes every cgroup and leaves no process behind', async (t) => {
    if (skip) return t.skip(skip);
    const b = await openBackend();
    if (typeof b === 'string') return t.skip(b);
    const sb = await b.backend.create({ runtime: 'node', memoryMb: 128, network: false });
    const pids = cgroupPids(b, sb);
    const parents = b.backend.cgroups!.parents;
    assert.ok(parents.every(existsSync));
    await b.close(); // without destroying the sandbox first
    assert.equal(sb.alive, false);
    assert.deepEqual(parents.filter(existsSync), []);
    assert.deepEqual(pids.filter(alive), []);
  });
});
