// Part `async` (issue 11): the cost of accepting an asynchronous call (checks,
// commit to the SQLite queue, 202) against a synchronous call of the same no-op
// function in the same server and run, both with wrk at 32 connections; then
// the drain rate: how fast the dispatcher empties the backlog the accept phase
// left. While accepting, the function is redeployed with concurrency 1, so the
// dispatcher runs one event at a time and the accept figure is mostly accepting.
import path from 'node:path';
import { haveWrk, wrk, type LoadResult } from '../lib/load.js';
import { log, type Check, type Part } from '../lib/part.js';
import { FUNCTIONS, sleep, startLamina, type LaminaServer } from '../lib/server.js';
import { median } from '../lib/stats.js';
import { fmt, table } from '../lib/table.js';

const CONNECTIONS = 32;
const IC = 64;

async function queueDepth(s: LaminaServer, fn: string): Promise<number> {
  const res = await fetch(`${s.url}/api/v1/queue`, { headers: { authorization: `Bearer ${s.token}` } });
  const q = (await res.json()) as { functions: { function: string; depth: number; inflight: number }[] };
  const f = q.functions.find((x) => x.function === fn);
  return f ? f.depth + f.inflight : 0;
}

/** Waits for the queue of `fn` to empty; events per second from the first sample on. */
async function drain(s: LaminaServer, fn: string, capS: number): Promise<{ events: number; seconds: number; rate: number }> {
  const d0 = await queueDepth(s, fn);
  const t0 = performance.now();
  let d = d0;
  while (d > 0 && performance.now() - t0 < capS * 1000) {
    await sleep(100);
    d = await queueDepth(s, fn);
  }
  const seconds = (performance.now() - t0) / 1000;
  if (d > 0) throw new Error(`the queue of ${fn} still held ${d} events after ${capS} s`);
  return { events: d0, seconds, rate: d0 / seconds };
}

export const async: Part = async (o) => {
  const notes: string[] = [];
  const rows: Record<string, unknown>[] = [];
  const checks: Check[] = [];
  if (!haveWrk()) throw new Error('the async part needs wrk (apt-get install -y wrk)');
  const rounds = o.short ? 1 : 3;
  const seconds = o.short ? 2 : 5;
  let lamina: LaminaServer | undefined;
  for (const tier of o.tiers) {
    try {
      lamina = await startLamina({ sandbox: tier });
      break;
    } catch (err) {
      notes.push(`tier ${tier} skipped: ${(err as Error).message}`);
    }
  }
  if (!lamina) throw new Error('no tier could start');
  try {
    // One instance takes every connection (as the warm part's ic=64 target): the comparison is then
    // about the call paths, not about how fast 32 sandboxes start on a shared machine.
    await lamina.deploy('noop', path.join(FUNCTIONS, 'noop'), { sandbox: lamina.tier, instanceConcurrency: IC });
    notes.push('accept phase: the function redeployed with concurrency 1, so async work holds one call slot while calls are accepted (the backlog then drains on the ic=64 version)');
    const url = `${lamina.url}/run/noop`;
    log(`  ${lamina.tier} tier, instanceConcurrency ${IC}; wrk -t1 -c${CONNECTIONS}, ${rounds} x ${seconds} s per phase, phases interleaved (sync, async accept, drain)`);
    // Warm-up until the rate settles (two 2 s runs within 30%), at most 10 runs: scale-out and V8.
    let prev = 0;
    for (let i = 0; i < 10; i++) {
      const w = await wrk(url, CONNECTIONS, 2);
      if (w.rps > 0 && prev > 0 && Math.abs(w.rps - prev) / prev < 0.3) break;
      prev = w.rps;
    }
    const sync: LoadResult[] = [];
    const accept: LoadResult[] = [];
    const drains: { events: number; seconds: number; rate: number }[] = [];
    const wide = { sandbox: lamina.tier, instanceConcurrency: IC };
    // While accepting, the function's async share is one call slot (a redeploy with concurrency 1):
    // the accept figure is then the cost of accepting (checks, commit, 202), not of running too,
    // and a backlog builds up for the drain phase, which redeploys the wide version.
    const narrow = { sandbox: lamina.tier, concurrency: 1, instanceConcurrency: 1 };
    for (let r = 0; r < rounds; r++) {
      sync.push(await wrk(url, CONNECTIONS, seconds));
      await lamina.deploy('noop', path.join(FUNCTIONS, 'noop'), narrow);
      accept.push(await wrk(url, CONNECTIONS, seconds, '{}', 'Event'));
      await lamina.deploy('noop', path.join(FUNCTIONS, 'noop'), wide);
      drains.push(await drain(lamina, 'noop', o.short ? 120 : 600));
    }
    const row = (phase: string, rs: LoadResult[]) => ({
      phase,
      rps: median(rs.map((x) => x.rps)),
      p50: median(rs.map((x) => x.p50)),
      p99: median(rs.map((x) => x.p99)),
      errors: rs.reduce((a, x) => a + x.errors, 0),
    });
    const s = row('sync call (200)', sync);
    const a = row('async accept (202, committed)', accept);
    const d = { phase: 'drain (dispatcher)', rps: median(drains.map((x) => x.rate)), p50: NaN, p99: NaN, errors: 0, events: drains.reduce((n, x) => n + x.events, 0) };
    rows.push(s, a, d);
    log(table(['phase', 'calls/s', 'p50 ms', 'p99 ms', 'errors'], rows.map((x: any) => [x.phase, x.rps, x.p50, x.p99, x.errors])));
    log(`  drained ${d.events} events in total; accept/sync throughput ${fmt(a.rps / s.rps, 2)}x`);
    checks.push({ aim: 'accepting an async call costs at most half a sync call (accept rate >= 2x sync rate, c=32)', measured: `${fmt(a.rps)} vs ${fmt(s.rps)} calls/s (${fmt(a.rps / s.rps, 2)}x)`, met: a.errors === 0 && s.rps > 0 && a.rps >= 2 * s.rps });
    checks.push({ aim: 'under overload nothing is refused (no error answer while accepting)', measured: `${a.errors} errors`, met: a.errors === 0 });
    checks.push({ aim: 'the backlog drains (drain rate of a no-op function, beside its sync rate)', measured: `${fmt(d.rps)} events/s drained vs ${fmt(s.rps)} sync calls/s`, met: d.rps > 0 });
  } finally {
    await lamina.stop();
  }
  return { rows, checks, notes };
};
