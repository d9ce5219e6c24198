// Part `cold`: latency of the first call after a deploy (each deploy is a new
// function, so its first call must start an instance; x-lamina-cold-start
// confirms it), with the pre-started pool and without it, per sandbox tier.
import path from 'node:path';
import { baseConfig } from '../../src/config.js';
import { request } from '../lib/load.js';
import { log, type Check, type Part } from '../lib/part.js';
import { FUNCTIONS, backgroundLoad, packFunction, sleep, startLamina } from '../lib/server.js';
import { summarize } from '../lib/stats.js';
import { fmt, table } from '../lib/table.js';

export const cold: Part = async (o) => {
  const n = o.short ? 5 : 100;
  // Pause between deploys, so a pooled runtime taken by one cold start is replaced before the next.
  const gapMs = o.short ? 100 : 250;
  const defaultPool = baseConfig({}).poolSize;
  const rows: Record<string, unknown>[] = [];
  const checks: Check[] = [];
  const notes: string[] = [];

  for (const tier of o.tiers) {
    const archive = await packFunction(path.join(FUNCTIONS, 'noop'), { sandbox: tier });
    for (const pool of [defaultPool, 0]) {
      let lamina;
      try {
        // Cold starts are measured: no isolate loaded at deploy (LAMINA_ISOLATE_PRELOAD; the density part measures that).
        lamina = await startLamina({ sandbox: tier, poolSize: pool, env: { LAMINA_ISOLATE_PRELOAD: '0' } });
      } catch (err) {
        notes.push(`tier ${tier} skipped: ${(err as Error).message}`);
        break;
      }
      try {
        await sleep(o.short ? 500 : 2000); // let the pool fill
        const coldMs: number[] = [];
        const warmMs: number[] = [];
        const deployMs: number[] = [];
        const other = backgroundLoad();
        let confirmed = 0;
        let errors = 0;
        for (let i = 0; i < n; i++) {
          const name = `cold-${i}`;
          const t0 = performance.now();
          await lamina.upload(name, archive);
          deployMs.push(performance.now() - t0);
          const first = await request(`${lamina.url}/run/${name}`, { body: '{}' });
          const second = await request(`${lamina.url}/run/${name}`, { body: '{}' });
          if (first.status !== 200 || second.status !== 200) {
            errors++;
            if (errors === 1) notes.push(`${tier}: HTTP ${first.status}/${second.status}: ${first.body.slice(0, 200)}`);
          } else {
            coldMs.push(first.ms);
            warmMs.push(second.ms);
            if (first.headers['x-lamina-cold-start'] === '1' && second.headers['x-lamina-cold-start'] === '0') confirmed++;
          }
          await lamina.remove(name);
          await sleep(gapMs);
        }
        const c = summarize(coldMs);
        const row = {
          tier: lamina.tier,
          pool,
          n: c.n,
          confirmedCold: confirmed,
          errors,
          p50: c.p50,
          p90: c.p90,
          p99: c.p99,
          max: c.max,
          warmP50: summarize(warmMs).p50,
          deployP50: summarize(deployMs).p50,
          otherCores: other(),
        };
        rows.push(row);
        if (pool > 0) checks.push({ aim: `cold start p50 < 15 ms with the pool (${lamina.tier})`, measured: `${fmt(row.p50, 2)} ms`, met: row.p50 < 15 });
      } finally {
        await lamina.stop();
      }
    }
  }
  log(
    table(
      ['tier', 'pool', 'calls', 'cold confirmed', 'errors', 'cold p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'warm p50 ms', 'deploy p50 ms', 'other load cores'],
      rows.map((r) => [r.tier, r.pool, r.n, r.confirmedCold, r.errors, r.p50, r.p90, r.p99, r.max, r.warmP50, r.deployP50, r.otherCores] as number[]),
    ),
  );
  log(`  (cold = client-side latency of the first call after a deploy; ${gapMs} ms pause between deploys; deploy = upload + compile, not included in cold)`);
  return { rows, checks, notes };
};
