// Part `elasticity` (issue 6): the OpenLambda paper's Figure 2 experiment. N calls
// outstanding in a closed loop for D seconds against a function busy 200 ms per
// call, either waiting (sleep) or computing (spin: a fixed 200 ms of CPU work),
// on Lamina (from zero instances, so the initial scale-out counts), on one
// conventional server that serves one call at a time (the Elastic Beanstalk
// analogue), and on a fixed pool of k = cores such servers.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { closedLoop, type ClosedLoopResult } from '../lib/load.js';
import { log, type Check, type Part } from '../lib/part.js';
import { FUNCTIONS, backgroundLoad, cpuTimeMs, sleep, startBaseline, startLamina, type Proc } from '../lib/server.js';
import { summarize } from '../lib/stats.js';
import { cdfSvg, type CdfSeries } from '../lib/svg.js';
import { fmt, table } from '../lib/table.js';

const WORK_MS = 200;

/** Iterations of bench/functions/cpu that take WORK_MS of CPU time here (best of 5, in a fresh process). */
function calibrate(): { iters: number; msPerIter: number } {
  const fn = pathToFileURL(path.join(FUNCTIONS, 'cpu/index.mjs')).href;
  const code = `
    const { handler } = await import(${JSON.stringify(fn)});
    const probe = 2e7;
    await handler({ iters: probe });
    let best = Infinity;
    for (let i = 0; i < 5; i++) {
      const c0 = process.cpuUsage();
      await handler({ iters: probe });
      const d = process.cpuUsage(c0);
      best = Math.min(best, (d.user + d.system) / 1000 / probe);
    }
    console.log(best);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  const msPerIter = Number(r.stdout.trim());
  if (!(msPerIter > 0)) throw new Error(`calibration failed: ${r.stderr || r.stdout}`);
  return { iters: Math.round(WORK_MS / msPerIter), msPerIter };
}

interface Variant {
  name: 'sleep' | 'spin';
  fn: string;
  body: string;
  /** The physical limit on latency with N outstanding (ms). */
  limitMs: number;
  limitLabel: string;
}

interface Target {
  label: string;
  kind: 'lamina' | 'single' | 'pool';
  start(): Promise<{ urls: string[]; procs: Proc[] }>;
}

export const elasticity: Part = async (o) => {
  const N = o.short ? 20 : 100;
  const durationMs = (o.durationS ?? (o.short ? 5 : 60)) * 1000;
  const cores = os.availableParallelism();
  const { iters, msPerIter } = calibrate();
  const notes = [`spin = ${iters} iterations of bench/functions/cpu (${fmt(msPerIter * 1e6, 3)} ns each: ${WORK_MS} ms of CPU time when run alone)`];
  log(`  N = ${N} outstanding, ${durationMs / 1000} s per target, ${cores} cores; ${notes[0]}`);
  const variants: Variant[] = [
    { name: 'sleep', fn: path.join(FUNCTIONS, 'sleep'), body: JSON.stringify({ ms: WORK_MS }), limitMs: WORK_MS, limitLabel: `limit ${WORK_MS} ms` },
    {
      name: 'spin',
      fn: path.join(FUNCTIONS, 'cpu'),
      body: JSON.stringify({ iters }),
      limitMs: (N * WORK_MS) / cores,
      limitLabel: `cores' limit ${fmt((N * WORK_MS) / cores / 1000)} s`,
    },
  ];
  const manifest = { concurrency: N, instanceConcurrency: 1, memoryMb: 128, timeoutMs: 300_000 };
  const skippedTiers = new Set<string>();
  const rows: Record<string, unknown>[] = [];
  const checks: Check[] = [];

  for (const v of variants) {
    const handlerFile = path.join(v.fn, 'index.mjs');
    const targets: Target[] = [
      ...o.tiers.map((spec): Target => {
        // `TIER/ungated`: the same tier with the scale-out gate off (LAMINA_SCALE_BY_CPU=0), for a comparison in one run.
        const [tier, variant] = spec.split('/') as [string, string | undefined];
        const ungated = variant === 'ungated';
        return {
          label: `Lamina (${tier}${ungated ? ', ungated' : ''})`,
          kind: 'lamina',
          async start() {
            const lamina = await startLamina({ sandbox: tier, ...(ungated ? { env: { LAMINA_SCALE_BY_CPU: '0' } } : {}) });
            try {
              await lamina.deploy('busy', v.fn, { ...manifest, sandbox: tier });
            } catch (err) {
              await lamina.stop();
              throw err;
            }
            await sleep(2000); // the default pre-started pool fills; no instance of `busy` exists yet
            return { urls: [`${lamina.url}/run/busy`], procs: [lamina] };
          },
        };
      }),
      {
        label: '1 server, 1 call at a time',
        kind: 'single',
        async start() {
          const p = await startBaseline('serial', handlerFile);
          return { urls: [p.url], procs: [p] };
        },
      },
      {
        label: `${cores} such servers, least-outstanding`,
        kind: 'pool',
        async start() {
          const ps = await Promise.all(Array.from({ length: cores }, () => startBaseline('serial', handlerFile)));
          return { urls: ps.map((p) => p.url), procs: ps };
        },
      },
    ];

    const series: CdfSeries[] = [];
    const byKind = new Map<string, { rps: number; otherCores: number }>();
    for (const t of targets) {
      if (skippedTiers.has(t.label)) continue;
      let started;
      try {
        started = await t.start();
      } catch (err) {
        skippedTiers.add(t.label);
        notes.push(`${t.label} skipped: ${(err as Error).message}`);
        continue;
      }
      let r: ClosedLoopResult;
      let cpuMs = 0;
      let otherCores = NaN;
      try {
        const other = backgroundLoad();
        const cpu0 = started.procs.reduce((a, p) => a + cpuTimeMs(p.pid, true), 0);
        r = await closedLoop({ targets: started.urls, outstanding: N, durationMs, body: v.body, drainMs: N * WORK_MS + 30_000 });
        cpuMs = started.procs.reduce((a, p) => a + cpuTimeMs(p.pid, true), 0) - cpu0;
        otherCores = other();
      } finally {
        for (const p of started.procs) await p.stop();
      }
      const s = summarize(r.latencies);
      // Calls issued in the first seconds include the scale-out (or, for the queues, their first round).
      const steadyAfterMs = Math.min(Math.max(5000, v.limitMs), durationMs / 2);
      const steady = summarize(r.latencies.filter((_, i) => r.issuedAt[i]! >= steadyAfterMs));
      // The cores other tenants left us, and the limit they imply (for spin: N x work / cores).
      const availCores = Math.max(0.1, cores - otherCores);
      const limitAvailMs = v.name === 'spin' ? (N * WORK_MS) / availCores : v.limitMs;
      const row = {
        variant: v.name,
        target: t.label,
        calls: s.n,
        p50: s.p50,
        p90: s.p90,
        p99: s.p99,
        max: s.max,
        steadyP99: steady.p99,
        rps: r.rpsInWindow,
        // Little's law: the mean latency a closed loop of N settles to at this rate.
        meanMs: (1000 * N) / r.rpsInWindow,
        errors: r.errors,
        coldStarts: t.kind === 'lamina' ? r.cold : null,
        cpuPerCallMs: s.n ? cpuMs / s.n : NaN,
        otherCores,
        limitMs: v.limitMs,
        p50OverLimit: s.p50 / v.limitMs,
        meanOverAvailLimit: (1000 * N) / r.rpsInWindow / limitAvailMs,
        statuses: r.statuses,
        errorSamples: r.errorSamples,
      };
      rows.push(row);
      series.push({ label: t.label, values: r.latencies });
      if (!byKind.has(t.kind)) byKind.set(t.kind, row);
      if (t.kind !== 'lamina') continue;
      if (r.errors > 0) {
        notes.push(`${v.name}, ${t.label}: ${r.errors} errors ${JSON.stringify(r.statuses)}; first of each: ${JSON.stringify(r.errorSamples)}`);
        checks.push({ aim: `no errors (${v.name}, ${t.label})`, measured: `${r.errors} errors of ${r.errors + s.n} calls`, met: false });
      }
      if (v.name === 'sleep') {
        checks.push({ aim: `sleep p50 within 50 ms of ${WORK_MS} ms (${t.label})`, measured: `${fmt(s.p50)} ms`, met: Math.abs(s.p50 - WORK_MS) <= 50 });
        checks.push({ aim: `sleep p99 < 1 s over the whole run (${t.label})`, measured: `${fmt(s.p99)} ms`, met: s.p99 < 1000 });
      } else {
        checks.push({
          aim: `spin within 20% of the cores' limit (${t.label})`,
          measured: `mean ${fmt(row.meanMs)} ms vs ${fmt(limitAvailMs)} ms on the ${fmt(availCores, 2)} cores left by other load (x${fmt(row.meanOverAvailLimit, 2)}); p50 ${fmt(s.p50)} ms vs ${fmt(v.limitMs)} ms on ${cores} idle cores`,
          met: row.meanOverAvailLimit <= 1.2,
        });
      }
    }
    const single = byKind.get('single');
    if (v.name === 'spin' && single) {
      for (const row of rows.filter((x) => x.variant === 'spin' && String(x.target).startsWith('Lamina'))) {
        // One server can use one core at most; Lamina can use every core the other load leaves.
        const allowed = Math.max(0.1, cores - (row.otherCores as number)) / Math.min(1, Math.max(0.1, cores - (single.otherCores as number)));
        const speedup = (row.rps as number) / (single.rps as number);
        checks.push({
          aim: `spin throughput ahead of one server by the cores' factor (${row.target})`,
          measured: `${fmt(speedup, 2)}x (the cores left by other load allowed ${fmt(allowed, 2)}x; ${cores}x on an idle machine)`,
          met: speedup >= allowed / 1.2,
        });
      }
    }
    if (series.length) {
      const svg = cdfSvg(`${N} calls outstanding, ${WORK_MS} ms ${v.name === 'sleep' ? 'sleep' : 'of CPU'} each, ${cores} cores, ${durationMs / 1000} s`, series, [{ x: v.limitMs, label: v.limitLabel }]);
      for (const dir of [o.outDir, o.plotDir]) if (dir) writeFileSync(path.join(dir, `elasticity-${v.name}.svg`), svg);
    }
  }

  log(
    table(
      ['variant', 'target', 'calls', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'p99 steady', 'req/s', 'mean ms', 'errors', 'cold starts', 'CPU/call ms', 'other load', 'limit ms', 'p50/limit', 'mean/avail limit'],
      rows.map((r) => [r.variant, r.target, r.calls, r.p50, r.p90, r.p99, r.max, r.steadyP99, r.rps, r.meanMs, r.errors, r.coldStarts, r.cpuPerCallMs, r.otherCores, r.limitMs, r.p50OverLimit, r.meanOverAvailLimit] as number[]),
    ),
  );
  log('  p99 steady: calls issued after the first max(5 s, limit), i.e. without the initial scale-out or first round.');
  log('  req/s: calls finished within the run; mean = N / (req/s) (Little\'s law). other load: cores used by processes');
  log('  outside the benchmark meanwhile; mean/avail limit: mean over N x work / (cores - other load) (spin), over 200 ms (sleep).');
  log(`  plots: ${[o.outDir, o.plotDir].filter(Boolean).map((d) => path.join(d!, 'elasticity-{sleep,spin}.svg')).join(', ')}`);
  return { rows, checks, notes };
};
