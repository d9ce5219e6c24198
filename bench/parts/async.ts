// Part `async` (issue 11): the cost of accepting an asynchronous call (checks,
// commit to the SQLite queue, 202) against a synchronous call of the same no-op
// function in the same server and run, both with wrk at 32 connections; then
// the drain rate: how fast the dispatcher empties the backlog the accept phase
// left. The dispatcher drains while calls are being accepted (as in
// production), so the accept figure includes that competition for the CPU.
import path from 'node:path';
import { haveWrk, wrk, type LoadResult } from '../lib/load.js';
import { log, type Check, type Part } from '../lib/part.js';
import { FUNCTIONS, sleep, startLamina, type LaminaServer } from '../lib/server.js';
import { median } from '../lib/stats.js';
import { fmt, table } from '../lib/table.js';

const CONNECTIONS = 32;

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
    await lamina.deploy('noop', path.join(FUNCTIONS, 'noop'), { sandbox: lamina.tier });
    const url = `${lamina.url}/run/noop`;
    log(`  ${lamina.tier} tier; wrk -t1 -c${CONNECTIONS}, ${rounds} x ${seconds} s per phase, phases interleaved (sync, async accept, drain)`);
    await wrk(url, CONNECTIONS, o.short ? 1 : 2); // warm-up: scale out and let V8 optimize
    const sync: LoadResult[] = [];
    const accept: LoadResult[] = [];
    const drains: { events: number; seconds: number; rate: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      sync.push(await wrk(url, CONNECTIONS, seconds));
      accept.push(await wrk(url, CONNECTIONS, seconds, '{}', 'Event'));
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
    checks.push({ aim: 'the drain rate of a no-op function is of the order of its sync rate', measured: `${fmt(d.rps)} events/s drained vs ${fmt(s.rps)} sync calls/s`, met: d.rps > 0 });
  } finally {
    await lamina.stop();
  }
  return { rows, checks, notes };
};
