// Warm-up before a measured warm round. "Warm" means the instances exist and
// their V8 is done optimizing: a fresh Node runtime keeps TurboFan busy for its
// first few thousand calls (the runtime's CPU per call falls from ~160 us to ~60
// us over its first ~3,000 calls, a fetch handler's over ~5,000; docs/benchmarks.md,
// "Warm means JIT-warm"). With instanceConcurrency 1 and 32 connections that is
// 32 runtimes to warm, so a fixed 2 s warm-up measured their compiling as per-call cost.
import type { LoadResult } from './load.js';
import type { LaminaServer } from './server.js';

/** Calls each instance serves before the measured rounds (past the curve above, with margin). */
export const CALLS_PER_INSTANCE = 6000;

/** Instances the server holds for a function (starting, busy, idle or paused). */
export async function instances(s: Pick<LaminaServer, 'url' | 'token'>, fn: string): Promise<number> {
  const res = await fetch(`${s.url}/api/v1/worker`, { headers: { authorization: `Bearer ${s.token}` } });
  const stats = (await res.json()) as { functions?: { name: string; busy: number; idle: number; paused: number }[] };
  const f = stats.functions?.find((x) => x.name === fn);
  return f ? f.busy + f.idle + f.paused : 0;
}

export interface WarmTarget {
  /** Without it (a bare server, workerd): one short load. */
  lamina?: { server: Pick<LaminaServer, 'url' | 'token'>; fn: string; ic: number };
}

/**
 * Loads a target until it holds an instance per connection (ic=1; instance starts inside a
 * measured round would count as per-call cost), then until every instance has served
 * `callsPerInstance` calls (counted from the load that found them all), at most `maxSeconds`.
 * `short` (CI's smoke run) loads once for a second: no claim of steady state there.
 */
export async function warmUp(t: WarmTarget, conns: number, load: (seconds: number) => Promise<LoadResult>, opts: { short?: boolean; callsPerInstance?: number; maxSeconds?: number } = {}): Promise<void> {
  if (opts.short) {
    await load(1);
    return;
  }
  const perInstance = opts.callsPerInstance ?? CALLS_PER_INSTANCE;
  const deadline = Date.now() + (opts.maxSeconds ?? 60) * 1000;
  const lamina = t.lamina;
  if (!lamina) {
    await load(2);
    return;
  }
  const want = lamina.ic > 1 ? 1 : conns;
  let served = 0;
  let all = false;
  while (Date.now() < deadline) {
    const r = await load(2);
    if (all) served += r.requests;
    else all = (await instances(lamina.server, lamina.fn)) >= want;
    if (all && served >= perInstance * want) return;
  }
}
