// Part `async` (issue 11): the cost of accepting an asynchronous call (checks,
// commit to the SQLite queue, 202) against a synchronous call of a no-op
// function in the same server and run, both with wrk at 32 connections; then
// the drain rate: how fast the dispatcher empties the backlog the accept phase
// left. Accepts go to a function `jobs` whose one call slot is held by its first
// event (a sleep as long as the phase), so the dispatcher runs nothing while
// calls are accepted and the figure is the cost of accepting alone; the drain
// phase then redeploys `jobs` with the no-op's code, wide, and times the backlog.
// Each phase also records the server's own CPU time per call.
import path from 'node:path';
import { haveWrk, wrk, type LoadResult } from '../lib/load.js';
import { log, type Check, type Part } from '../lib/part.js';
import { cpuTimeMs, FUNCTIONS, sleep, startLamina, type LaminaServer } from '../lib/server.js';
import { median } from '../lib/stats.js';
import { fmt, table } from '../lib/table.js';

const CONNECTIONS = 32;
const IC = 64;

/** Events of `fn` waiting, plus those running beyond `ignoreRunning` (the held slot's sleeper). */
async function queueDepth(s: LaminaServer, fn: string, ignoreRunning = 0): Promise<number> {
  const res = await fetch(`${s.url}/api/v1/queue`, { headers: { authorization: `Bearer ${s.token}` } });
  const q = (await res.json()) as { functions: { function: string; depth: number; inflight: number }[] };
  const f = q.functions.find((x) => x.function === fn);
  return f ? f.depth + Math.max(0, f.inflight - ignoreRunning) : 0;
}

/** Waits for the queue of `fn` to empty; events per second from the first sample on. */
async function drain(s: LaminaServer, fn: string, capS: number, ignoreRunning: number): Promise<{ events: number; seconds: number; rate: number }> {
  const d0 = await queueDepth(s, fn, ignoreRunning);
  const t0 = performance.now();
  let d = d0;
  while (d > 0 && performance.now() - t0 < capS * 1000) {
    // Not faster: the queue's statistics are a count over the backlog, itself a cost to the server.
    await sleep(100);
    d = await queueDepth(s, fn, ignoreRunning);
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
    notes.push('accept phase: calls to `jobs`, whose single call slot is held by its first event (a sleep as long as the phase), so nothing drains while accepting; drain phase: `jobs` redeployed with the no-op code, instanceConcurrency 64');
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
    // The server's own CPU (ms) per sync call and per accepted call; the sandbox's is not counted (an accept has none).
    const cost = { sync: [] as number[], accept: [] as number[] };
    const cpu = () => cpuTimeMs(lamina!.pid);
    const parked = { sandbox: lamina.tier, concurrency: 1, instanceConcurrency: 1 };
    const wide = { sandbox: lamina.tier, instanceConcurrency: IC };
    const hold = JSON.stringify({ ms: seconds * 1000 + 1000 });
    for (let r = 0; r < rounds; r++) {
      let c0 = cpu();
      const sy = await wrk(url, CONNECTIONS, seconds);
      sync.push(sy);
      cost.sync.push((cpu() - c0) / sy.requests);
      await lamina.deploy('jobs', path.join(FUNCTIONS, 'sleep'), parked);
      c0 = cpu();
      const ac = await wrk(`${lamina.url}/run/jobs`, CONNECTIONS, seconds, hold, 'Event');
      cost.accept.push((cpu() - c0) / ac.requests);
      accept.push(ac);
      await lamina.deploy('jobs', path.join(FUNCTIONS, 'noop'), wide);
      // The first event may still sleep on the old version: it is not part of the backlog timed.
      drains.push(await drain(lamina, 'jobs', o.short ? 120 : 600, 1));
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
    const us = { sync: median(cost.sync) * 1000, accept: median(cost.accept) * 1000 };
    rows.push({ part: 'server-cpu-per-call', syncUs: us.sync, acceptUs: us.accept });
    log(table(['server CPU per call', 'us'], [['sync call', us.sync], ['async accept', us.accept]]));
    checks.push({ aim: 'accepting an async call costs at most half a sync call (accept rate >= 2x sync rate, c=32)', measured: `${fmt(a.rps)} vs ${fmt(s.rps)} calls/s (${fmt(a.rps / s.rps, 2)}x)`, met: a.errors === 0 && s.rps > 0 && a.rps >= 2 * s.rps });
    checks.push({ aim: 'the same in server CPU per call (accept <= half a sync call)', measured: `${fmt(us.accept)} vs ${fmt(us.sync)} us (${fmt(us.accept / us.sync, 2)}x)`, met: us.sync > 0 && us.accept <= 0.5 * us.sync });
    checks.push({ aim: 'under overload nothing is refused (no error answer while accepting)', measured: `${a.errors} errors`, met: a.errors === 0 });
    checks.push({ aim: 'the backlog drains (drain rate of a no-op function, beside its sync rate)', measured: `${fmt(d.rps)} events/s drained vs ${fmt(s.rps)} sync calls/s`, met: d.rps > 0 });
  } finally {
    await lamina.stop();
  }
  return { rows, checks, notes };
};
