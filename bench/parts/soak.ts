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
import { FNS, GIVE_UP_MS, callOnce, classifyTimes, functionOf, leftovers, withMarker, type Fn, type Kill, type Sample } from '../lib/soak-mix.js';
import os from 'node:os';
import path from 'node:path';
import { log, type Check, type Part } from '../lib/part.js';
import { descendants, sleep, startLamina, type LaminaServer } from '../lib/server.js';
import { percentile } from '../lib/stats.js';
import { fmt, table } from '../lib/table.js';

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

/** Runtime processes of the server (the innermost process of each sandbox). */
function runtimes(pid: number): number[] {
  return descendants(pid)
    .map((d) => d.pid)
    .filter((p) => {
      try {
        const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        // bwrap's own processes carry the runtime's command line too: only the runtime itself.
        return (argv.includes('node.mjs') || argv.includes('host.mjs')) && path.basename(argv.split('\0')[0]!) !== 'bwrap';
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
    writeFileSync(path.join(d, 'index.mjs'), withMarker(f));
    dirs.set(f.name, d);
  }
  const server: LaminaServer = await startLamina({});
  const pid = server.pid;
  const notes: string[] = [`tier ${server.tier}; ${(durationMs / 1000).toFixed(0)} s; load average at start ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other work on the machine included)`];
  const samples: Sample[] = [];
  let t0 = performance.now();
  let stop = false;
  const kills: Kill[] = [];
  let redeploys = 0;
  let recreations = 0;
  const minutes: { minute: number; rssMb: number; fds: number; sandboxes: number }[] = [];
  let rssWarm = NaN;
  try {
    for (const f of FNS) await server.deploy(f.name, dirs.get(f.name)!, { name: f.name, ...f.manifest });
    // A service that has been running: one call of each function before the clock starts, so
    // the first second is not a burst of every function's first sandbox start at once.
    for (const f of FNS) await callOnce(server.url, f, performance.now(), GIVE_UP_MS);


    const loop = async (f: Fn): Promise<void> => {
      while (!stop) samples.push(await callOnce(server.url, f, t0, GIVE_UP_MS));
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

    t0 = performance.now();
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
    // Chaos: a random sandbox runtime gets SIGKILL every 3 s. Each kill is recorded with the
    // function whose code the sandbox holds (read through /proc/PID/root, the sandbox's own view
    // of its files), so a failed call is blamed on the chaos only if a sandbox of its function
    // was killed while the call was open (see chaosMade below).
    tasks.push(every(3_000, 2_000, async () => {
      const rs = runtimes(pid);
      if (rs.length === 0) return;
      const victim = rs[Math.floor(Math.random() * rs.length)]!;
      const fn = functionOf(victim);
      try {
        process.kill(victim, 'SIGKILL');
        kills.push({ at: performance.now() - t0, fn });
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
    // A call's sandbox died under it (SandboxCrashed; a SIGKILL is never an OOM kill, which the
    // cgroup counts apart) and the chaos killed a sandbox of that function while the call was open,
    // or up to 500 ms before it was sent: the server learns of a death from the exit (or a closed
    // channel, then 200 ms of grace), and a call handed over meanwhile meets the dead runtime.
    const chaosMade = (s: Sample) => s.type === 'SandboxCrashed' && kills.some((k) => k.fn === s.fn && k.at >= s.at - 500 && k.at <= s.at + s.ms + 50);
    const unexpected = samples.filter((s) => s.status !== 0 && !byFn.get(s.fn)!.expected.includes(s.status) && !chaosMade(s));
    const { hung, late } = classifyTimes(samples);
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
    for (const u of unexpected.slice(0, 10)) notes.push(`unexpected: ${u.fn} ${u.status} ${u.type} at ${(u.at / 1000).toFixed(1)} s after ${u.ms.toFixed(0)} ms: ${u.message.slice(0, 160)}`);
    notes.push(`chaos kills at (s): ${kills.map((k) => `${(k.at / 1000).toFixed(1)} ${k.fn || 'pooled'}`).join(', ')}`);
    for (const h of [...hung.slice(0, 10), ...late.slice(0, 5)]) notes.push(`${hung.includes(h) ? 'hung' : 'late'}: ${h.fn} ${h.status} ${h.type} at ${(h.at / 1000).toFixed(1)} s, after ${h.ms.toFixed(0)} ms (${h.cold ? 'cold, ' : ''}run ${fmt(h.runMs ?? NaN)} ms${h.instance ? ` on ${h.instance}` : ''}): ${h.message.slice(0, 160)}`);
    notes.push(`${samples.length} calls; ${kills.length} sandboxes SIGKILLed (${[...new Set(kills.map((k) => k.fn || 'pooled'))].map((f) => `${f} ${kills.filter((k) => (k.fn || 'pooled') === f).length}`).join(', ')}), ${chaosFailures} calls failed by that chaos; ${redeploys} redeploys of "fast"; ${recreations} re-creations of "ephemeral"`);

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
      { aim: 'soak: hung calls (no answer within timeout + start limit + 5 s, or a run past its timeout + 1 s) = 0', measured: `${hung.length} (late: ${late.length} answered after timeout + 1 s, having waited for a sandbox start or in the queue)`, met: hung.length === 0 },
      { aim: 'soak: server RSS after the load within 20% of RSS after warm-up', measured: `${fmt(rssWarm)} MB -> ${fmt(rssEnd)} MB (${(rssGrowth * 100).toFixed(1)}%)`, met: Math.abs(rssGrowth) <= 0.2 },
      { aim: 'soak: nothing left after the server stops (processes, cgroups, run dirs)', measured: `${left.processes} processes, ${left.cgroups} cgroups, ${left.runDirs} run dirs`, met: left.processes + left.cgroups + left.runDirs === 0 },
    ];
    for (const c of checks) log(`  ${c.met ? 'ok    ' : 'FAILED'} ${c.aim}: ${c.measured}`);
    rows.push({ minute: 'total', calls: samples.length, unexpected: unexpected.length, hung: hung.length, late: late.length, chaosKills: kills.length, chaosFailures, rssWarmMb: rssWarm, rssEndMb: rssEnd });
    return { rows, checks, notes };
  } finally {
    stop = true;
    await server.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
};
