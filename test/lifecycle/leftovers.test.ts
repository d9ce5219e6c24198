// Issue 16: a server killed with SIGKILL while holding paused (frozen)
// container sandboxes must not leave them behind. Its reaper clears them at
// once; if the reaper was killed too, the next start of any Lamina does.
// Either way: zero processes, cgroups and run dirs of the dead server.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cgroupBases } from '../../src/sandbox/leftovers.js';
import { admin, deployCode, invoke, isAlive, sleep, startServer, testTiers, type TestServer } from '../helpers/server.js';

const skip = !testTiers().includes('container') && 'container tier not under test';

/** Cgroup directories (parents and their sandboxes) of Lamina process `pid`. */
function cgroupsOf(pid: number): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number): void => {
    let entries: import('node:fs').Dirent[] = [];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = path.join(d, e.name);
      if (e.name.startsWith(`lamina-${pid}-`)) {
        out.push(p);
        for (const c of readdirSync(p, { withFileTypes: true })) if (c.isDirectory()) out.push(path.join(p, c.name));
      } else if (depth < 4 && !e.name.startsWith('lamina-')) walk(p, depth + 1);
    }
  };
  for (const b of cgroupBases()) walk(b, 0);
  return [...new Set(out)];
}

function tasksIn(dirs: string[]): number[] {
  const pids = new Set<number>();
  for (const d of dirs) {
    try {
      for (const s of readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n')) if (s) pids.add(Number(s));
    } catch {
      /* gone */
    }
  }
  return [...pids];
}

function runDirsOf(pid: number): string[] {
  return readdirSync(os.tmpdir()).filter((n) => n.startsWith(`lamina-run-${pid}-`));
}

function reaperOf(pid: number): number | undefined {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (argv.includes('lamina-reaper') && argv[argv.indexOf('lamina-reaper') + 1] === String(pid)) return Number(e);
    } catch {
      /* exited */
    }
  }
  return undefined;
}

/** A server holding three paused instances; returns what they hold. */
async function serverWithPausedInstances(): Promise<{ s: TestServer; pid: number; tasks: number[] }> {
  const s = await startServer({ tier: 'container', env: { LAMINA_PAUSE_AFTER_MS: '50', LAMINA_POOL_SIZE: '1' } });
  await deployCode(s, 'held', 'export async function handler() { await new Promise((r) => setTimeout(r, 300)); return 1; }', { concurrency: 3 });
  const rs = await Promise.all([1, 2, 3].map(() => invoke(s, 'held', {})));
  assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
  for (let i = 0; i < 200; i++) {
    const insts = (await admin(s, 'GET', '/functions/held')).body.instances as { paused: boolean }[];
    if (insts.length === 3 && insts.every((x) => x.paused)) break;
    await sleep(50);
  }
  const insts = (await admin(s, 'GET', '/functions/held')).body.instances as { paused: boolean }[];
  assert.ok(insts.length === 3 && insts.every((x) => x.paused), `instances not paused: ${JSON.stringify(insts)}`);
  const pid = s.proc.pid!;
  const tasks = tasksIn(cgroupsOf(pid));
  assert.ok(tasks.length >= 3, `expected sandbox tasks in the server's cgroups, found ${tasks.length}`);
  assert.ok(runDirsOf(pid).length > 0, 'the server has a run dir named after its pid');
  return { s, pid, tasks };
}

function assertNothingLeft(pid: number, tasks: number[]): void {
  assert.deepEqual(tasks.filter(isAlive), [], 'sandbox processes of the dead server are still alive');
  assert.deepEqual(cgroupsOf(pid), [], 'cgroups of the dead server remain');
  assert.deepEqual(runDirsOf(pid), [], 'run dirs of the dead server remain');
}

test('kill -9 of a server with paused sandboxes: its reaper clears them, and the next start finds nothing left', { skip }, async () => {
  const { s, pid, tasks } = await serverWithPausedInstances();
  assert.ok(reaperOf(pid), 'the server has a reaper');
  await s.stop('SIGKILL');
  for (let i = 0; i < 100 && (tasks.some(isAlive) || cgroupsOf(pid).length > 0); i++) await sleep(50);
  const next = await startServer({ tier: 'container' });
  try {
    assertNothingLeft(pid, tasks);
  } finally {
    await next.stop();
  }
});

test('kill -9 of a server and its reaper: the next start of any Lamina thaws and kills what is left', { skip }, async () => {
  const { s, pid, tasks } = await serverWithPausedInstances();
  const reaper = reaperOf(pid);
  assert.ok(reaper, 'the server has a reaper');
  process.kill(reaper, 'SIGKILL');
  await s.stop('SIGKILL');
  await sleep(300);
  // Frozen, they ignore the parent-death signal and the closed channel: still there.
  assert.ok(tasks.some(isAlive), 'frozen sandboxes outlived their server (the attack needs them alive)');
  const next = await startServer({ tier: 'process' });
  try {
    assertNothingLeft(pid, tasks);
    assert.match(next.output(), /swept what dead Lamina processes left/);
  } finally {
    await next.stop();
  }
});
