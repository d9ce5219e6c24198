// Part `soak` (issue 16): sustained mixed load with chaos on one `lamina up`,
// watching for hung calls, unexpected failures, leaks and leftovers.
// Mix, all at once for the run's duration (10 min full, 1 min --short, or
// --duration S): fast JSON calls on 32 connections; calls that throw; slow calls
// near their timeout; calls near their memory cap; a redeploy of the busy
// function every 10 s; a function deleted and re-created every 10 s; and a
// random sandbox runtime SIGKILLed every 3 s. Per minute: calls by outcome,
// latency p50/p99/max, server RSS and open fds. Verdicts: unexpected failures
// (neither the function nor the chaos made it fail) = 0; hung calls (answered
// later than the timeout plus 1 s, or never) = 0; RSS after the load within 20%
// of RSS after warm-up; nothing of the server left after it stops.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { log, type Check, type Part } from '../lib/part.js';
import { descendants, sleep, startLamina, type LaminaServer } from '../lib/server.js';
import { percentile } from '../lib/stats.js';
import { fmt, table } from '../lib/table.js';

interface Fn {
  name: string;
  code: string;
  manifest: Record<string, unknown>;
  /** Statuses this function answers by design (besides chaos). */
  expected: number[];
  /** Loops calling it at once. */
  loops: number;
  body: string;
}

const FNS: Fn[] = [
  { name: 'fast', code: 'export async function handler(e) { return { echo: e }; }', manifest: { timeoutMs: 5000, concurrency: 8 }, expected: [200], loops: 32, body: '{"hello":"world","n":[1,2,3]}' },
  { name: 'fails', code: 'export async function handler() { throw new Error("by design"); }', manifest: { timeoutMs: 5000 }, expected: [500], loops: 2, body: '{}' },
  { name: 'slow', code: 'export async function handler() { await new Promise((r) => setTimeout(r, 1500)); return "late"; }', manifest: { timeoutMs: 2000, concurrency: 8 }, expected: [200], loops: 4, body: '{}' },
  // About half of its cap, held for the call and dropped after.
  { name: 'heavy', code: 'export async function handler() { const b = Buffer.alloc(60 * 1024 * 1024, 1); return b[123]; }', manifest: { memoryMb: 128, timeoutMs: 5000, concurrency: 2 }, expected: [200], loops: 1, body: '{}' },
  // Deleted and re-created every 10 s: 404 while it is gone is by design.
  { name: 'ephemeral', code: 'export async function handler() { return "here"; }', manifest: { timeoutMs: 5000 }, expected: [200, 404], loops: 2, body: '{}' },
];

interface Sample {
  fn: string;
  at: number;
  ms: number;
  status: number;
  type: string;
  message: string;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** Cgroup dirs, run dirs and processes of Lamina process `pid` still on the host. */
function leftovers(pid: number): { processes: number; cgroups: number; runDirs: number } {
  let cgroups = 0;
  for (const base of ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/freezer', '/sys/fs/cgroup/pids', '/sys/fs/cgroup']) {
    const walk = (d: string, depth: number): void => {
      let entries: import('node:fs').Dirent[] = [];
      try {
        entries = readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        if (e.name.startsWith(`lamina-${pid}-`)) cgroups++;
        else if (depth < 3 && !e.name.startsWith('lamina-')) walk(path.join(d, e.name), depth + 1);
      }
    };
    walk(base, 0);
  }
  const runDirs = readdirSync(os.tmpdir()).filter((n) => n.startsWith(`lamina-run-${pid}-`)).length;
  let processes = 0;
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cgroup`, 'utf8').includes(`/lamina-${pid}-`)) processes++;
    } catch {
      /* exited */
    }
  }
  return { processes, cgroups, runDirs };
}

/** Runtime processes of the server (the innermost process of each sandbox). */
function runtimes(pid: number): number[] {
  return descendants(pid)
    .map((d) => d.pid)
    .filter((p) => {
      try {
        const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return argv.includes('node.mjs') || argv.includes('host.mjs');
      } catch {
        return false;
      }
    });
}

export const soak: Part = async (o) => {
  const durationMs = (o.durationS ?? (o.short ? 60 : 600)) * 1000;
  const warmupMs = Math.min(60_000, durationMs / 4);
  const work = mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-soak-'));
  const dirs = new Map<string, string>();
  for (const f of FNS) {
    const d = path.join(work, f.name);
    mkdirSync(d);
    writeFileSync(path.join(d, 'index.mjs'), f.code);
    dirs.set(f.name, d);
  }
  const server: LaminaServer = await startLamina({});
  const pid = server.pid;
  const notes: string[] = [`tier ${server.tier}; ${(durationMs / 1000).toFixed(0)} s; load average at start ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other work on the machine included)`];
  const samples: Sample[] = [];
  const t0 = performance.now();
  let stop = false;
  let kills = 0;
  let redeploys = 0;
  let recreations = 0;
  const minutes: { minute: number; rssMb: number; fds: number; sandboxes: number }[] = [];
  let rssWarm = NaN;
  try {
    for (const f of FNS) await server.deploy(f.name, dirs.get(f.name)!, { name: f.name, ...f.manifest });
    const timeoutOf = (f: Fn) => Number(f.manifest.timeoutMs);

    const loop = async (f: Fn): Promise<void> => {
      while (!stop) {
        const started = performance.now();
        const at = started - t0;
        try {
          // Never: the client gives up 5 s after the timeout (counted as hung).
          const res = await fetch(`${server.url}/run/${f.name}`, { method: 'POST', body: f.body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(timeoutOf(f) + 5000) });
          const text = await res.text();
          let type = '';
          let message = '';
          if (res.status !== 200) {
            try {
              const e = (JSON.parse(text) as { error: { type: string; message: string } }).error;
              type = e.type;
              message = e.message;
            } catch {
              type = 'unparsed';
              message = text.slice(0, 200);
            }
          }
          samples.push({ fn: f.name, at, ms: performance.now() - started, status: res.status, type, message });
        } catch (err) {
          samples.push({ fn: f.name, at, ms: performance.now() - started, status: 0, type: 'NoAnswer', message: (err as Error).message });
        }
      }
    };

    const every = async (ms: number, offset: number, action: () => Promise<void>): Promise<void> => {
      await sleep(offset);
      while (!stop) {
        await action().catch((err: Error) => notes.push(`chaos/redeploy step failed: ${err.message}`));
        await sleep(ms);
      }
    };

    const monitor = async (): Promise<void> => {
      let minute = 0;
      let warmTaken = false;
      while (!stop) {
        await sleep(1000);
        const elapsed = performance.now() - t0;
        if (!warmTaken && elapsed >= warmupMs) {
          rssWarm = rssMb(pid);
          warmTaken = true;
        }
        if (elapsed >= (minute + 1) * 60_000 || (stop && elapsed > minute * 60_000)) {
          minutes.push({ minute: minute + 1, rssMb: rssMb(pid), fds: openFds(pid), sandboxes: runtimes(pid).length });
          minute++;
        }
      }
    };

    const tasks: Promise<void>[] = [];
    for (const f of FNS) for (let i = 0; i < f.loops; i++) tasks.push(loop(f));
    // A redeploy of the busy function every 10 s: calls in flight finish on the old version.
    tasks.push(every(10_000, 10_000, async () => {
      await server.deploy('fast', dirs.get('fast')!, { name: 'fast', ...FNS[0]!.manifest, env: { REV: String(++redeploys) } });
    }));
    tasks.push(every(10_000, 5_000, async () => {
      await server.remove('ephemeral');
      await sleep(1000);
      await server.deploy('ephemeral', dirs.get('ephemeral')!, { name: 'ephemeral', ...FNS[4]!.manifest });
      recreations++;
    }));
    // Chaos: a random sandbox runtime gets SIGKILL every 3 s.
    tasks.push(every(3_000, 2_000, async () => {
      const rs = runtimes(pid);
      if (rs.length === 0) return;
      const victim = rs[Math.floor(Math.random() * rs.length)]!;
      try {
        process.kill(victim, 'SIGKILL');
        kills++;
      } catch {
        /* gone meanwhile */
      }
    }));
    const mon = monitor();
    await sleep(durationMs);
    stop = true;
    await Promise.all(tasks);
    await mon;
    const rssEnd = rssMb(pid);
    minutes.push({ minute: Math.ceil(durationMs / 60_000) + 0.5, rssMb: rssEnd, fds: openFds(pid), sandboxes: runtimes(pid).length });

    // Outcomes.
    const byFn = new Map(FNS.map((f) => [f.name, f]));
    const chaosMade = (s: Sample) => (s.type === 'SandboxCrashed' || s.type === 'MemoryLimitExceeded') && /SIGKILL|killed|exited|closed its channel/i.test(s.message);
    const unexpected = samples.filter((s) => s.status !== 0 && !byFn.get(s.fn)!.expected.includes(s.status) && !chaosMade(s));
    const hung = samples.filter((s) => s.status === 0 || s.ms > timeoutOf(byFn.get(s.fn)!) + 1000);
    const chaosFailures = samples.filter(chaosMade).length;
    const rows: Record<string, unknown>[] = [];
    const maxMinute = Math.ceil(durationMs / 60_000);
    for (let m = 0; m < maxMinute; m++) {
      const w = samples.filter((s) => s.at >= m * 60_000 && s.at < (m + 1) * 60_000);
      const lat = w.map((s) => s.ms).sort((a, b) => a - b);
      const outcomes: Record<string, number> = {};
      for (const s of w) outcomes[s.status === 200 ? 'ok' : s.type || String(s.status)] = (outcomes[s.status === 200 ? 'ok' : s.type || String(s.status)] ?? 0) + 1;
      const mon = minutes.find((x) => x.minute === m + 1) ?? minutes[minutes.length - 1];
      rows.push({
        minute: m + 1,
        calls: w.length,
        outcomes: Object.entries(outcomes).map(([k, v]) => `${k} ${v}`).join(', '),
        p50Ms: percentile(lat, 50),
        p99Ms: percentile(lat, 99),
        maxMs: lat.length ? lat[lat.length - 1]! : NaN,
        rssMb: mon?.rssMb ?? NaN,
        openFds: mon?.fds ?? NaN,
        sandboxes: mon?.sandboxes ?? NaN,
      });
    }
    const cols = ['minute', 'calls', 'p50Ms', 'p99Ms', 'maxMs', 'rssMb', 'openFds', 'sandboxes', 'outcomes'];
    log(table(cols, rows.map((r) => cols.map((c) => r[c] as string | number))));
    // What failed, by function and cause (messages cut before their variable parts).
    const kinds = new Map<string, number>();
    for (const x of samples) if (x.status !== 200) {
      const k = `${x.fn} ${x.status} ${x.type}: ${x.message.replace(/\(deadline [^)]*\)|[0-9a-f-]{36}|\d+/g, '#').slice(0, 90)}`;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    for (const [k, n] of [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 12)) notes.push(`failures: ${n} x ${k}`);
    for (const u of unexpected.slice(0, 5)) notes.push(`unexpected: ${u.fn} ${u.status} ${u.type}: ${u.message.slice(0, 160)}`);
    for (const h of hung.slice(0, 5)) notes.push(`hung: ${h.fn} ${h.status} after ${h.ms.toFixed(0)} ms: ${h.message.slice(0, 160)}`);
    notes.push(`${samples.length} calls; ${kills} sandboxes SIGKILLed, ${chaosFailures} calls failed by that chaos; ${redeploys} redeploys of "fast"; ${recreations} re-creations of "ephemeral"`);

    // Everything of the server gone after a graceful stop.
    await server.stop();
    // The server's reaper may still be clearing up after a stop that ended in SIGKILL.
    let left = leftovers(pid);
    for (let i = 0; i < 50 && left.processes + left.cgroups + left.runDirs > 0; i++) {
      await sleep(100);
      left = leftovers(pid);
    }
    if (left.processes + left.cgroups + left.runDirs > 0) {
      // What the stop left, the next start of any Lamina sweeps: show that it does.
      const next = await startLamina({});
      await next.stop();
      const after = leftovers(pid);
      notes.push(`left after the stop: ${JSON.stringify(left)}; after the next start's sweep: ${JSON.stringify(after)}`);
    }
    const rssGrowth = (rssEnd - rssWarm) / rssWarm;
    const checks: Check[] = [
      { aim: 'soak: unexpected failures = 0', measured: String(unexpected.length), met: unexpected.length === 0 },
      { aim: 'soak: hung calls (later than timeout + 1 s, or never) = 0', measured: String(hung.length), met: hung.length === 0 },
      { aim: 'soak: server RSS after the load within 20% of RSS after warm-up', measured: `${fmt(rssWarm)} MB -> ${fmt(rssEnd)} MB (${(rssGrowth * 100).toFixed(1)}%)`, met: Math.abs(rssGrowth) <= 0.2 },
      { aim: 'soak: nothing left after the server stops (processes, cgroups, run dirs)', measured: `${left.processes} processes, ${left.cgroups} cgroups, ${left.runDirs} run dirs`, met: left.processes + left.cgroups + left.runDirs === 0 },
    ];
    for (const c of checks) log(`  ${c.met ? 'ok    ' : 'FAILED'} ${c.aim}: ${c.measured}`);
    rows.push({ minute: 'total', calls: samples.length, unexpected: unexpected.length, hung: hung.length, chaosKills: kills, chaosFailures, rssWarmMb: rssWarm, rssEndMb: rssEnd });
    return { rows, checks, notes };
  } finally {
    stop = true;
    await server.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
};
