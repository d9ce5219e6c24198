// Part `live`: what the live event stream (GET /api/v1/events: the console,
// `lamina logs -f`) costs the invoke path. The same warm no-op function is
// loaded with no stream open (the baseline) and with 8 streams reading every
// call's record; rounds are interleaved and the median taken. Each stream
// counts what it receives, so a stream that falls behind shows up too.
import path from 'node:path';
import { haveWrk, nodeLoad, wrk, type LoadResult } from '../lib/load.js';
import { log, type Check, type Part } from '../lib/part.js';
import { FUNCTIONS, startLamina, type LaminaServer } from '../lib/server.js';
import { median } from '../lib/stats.js';
import { fmt, table } from '../lib/table.js';

const BODY = '{"hello":"world"}';
const SUBSCRIBERS = 8;
const CONNECTIONS = 32;

/** Opens `n` event streams; each counts the `invocation` events it reads. */
async function openStreams(s: LaminaServer, n: number): Promise<{ counts: number[]; close: () => void }> {
  const stop = new AbortController();
  const counts = new Array<number>(n).fill(0);
  await Promise.all(
    counts.map(async (_, i) => {
      const res = await fetch(`${s.url}/api/v1/events`, { headers: { authorization: `Bearer ${s.token}` }, signal: stop.signal });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let first = true;
      let ready: () => void = () => undefined;
      const isReady = new Promise<void>((r) => (ready = r));
      void (async () => {
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) return;
            const text = decoder.decode(value, { stream: true });
            if (first && text.includes('event: ready')) {
              first = false;
              ready();
            }
            counts[i]! += text.split('event: invocation').length - 1;
          }
        } catch {
          // aborted
        }
      })();
      await isReady;
    }),
  );
  return { counts, close: () => stop.abort() };
}

export const live: Part = async (o) => {
  const rounds = o.short ? 1 : 3;
  const seconds = o.short ? 1 : 5;
  const notes: string[] = [];
  const useWrk = haveWrk();
  const load = (url: string, c: number, s: number): Promise<LoadResult> => (useWrk ? wrk(url, c, s, BODY) : nodeLoad(url, c, s, BODY));
  const tier = o.tiers.includes('isolate') ? 'isolate' : o.tiers[0]!;
  const s = await startLamina({ sandbox: tier });
  const rows: Record<string, unknown>[] = [];
  const checks: Check[] = [];
  try {
    await s.deploy('noop', path.join(FUNCTIONS, 'noop'), { sandbox: tier, instanceConcurrency: 64 });
    const url = `${s.url}/run/noop`;
    log(`  ${s.tier}, noop ic=64, ${CONNECTIONS} connections, ${rounds} x ${seconds} s per point, interleaved; ${useWrk ? 'wrk -t1' : 'node load'}`);
    await load(url, CONNECTIONS, o.short ? 1 : 2);
    const runs: Record<'0' | 'n', { res: LoadResult; delivered: number }[]> = { '0': [], n: [] };
    for (let r = 0; r < rounds; r++) {
      for (const which of r % 2 ? (['n', '0'] as const) : (['0', 'n'] as const)) {
        if (which === '0') {
          runs['0'].push({ res: await load(url, CONNECTIONS, seconds), delivered: NaN });
          continue;
        }
        const streams = await openStreams(s, SUBSCRIBERS);
        const res = await load(url, CONNECTIONS, seconds);
        // Give the streams a moment to read what was written before the load stopped.
        await new Promise((done) => setTimeout(done, 500));
        streams.close();
        const calls = res.requests;
        runs.n.push({ res, delivered: calls ? Math.min(...streams.counts) / calls : NaN });
      }
    }
    for (const [key, label] of [['0', 'no event stream'], ['n', `${SUBSCRIBERS} event streams`]] as const) {
      const rs = runs[key];
      rows.push({
        target: label,
        rps: median(rs.map((x) => x.res.rps)),
        p50: median(rs.map((x) => x.res.p50)),
        p99: median(rs.map((x) => x.res.p99)),
        errors: rs.reduce((a, x) => a + x.res.errors, 0),
        delivered: median(rs.map((x) => x.delivered)),
      });
    }
    const [base, withStreams] = rows as { rps: number; p50: number; delivered: number }[];
    const ratio = withStreams!.rps / base!.rps;
    checks.push({ aim: `throughput with ${SUBSCRIBERS} event streams open >= 80% of none`, measured: `${fmt(100 * ratio, 1)}%`, met: ratio >= 0.8 });
    checks.push({ aim: 'every stream receives every call (wrk counts requests it sent but did not see answered, so slightly under 100% is expected)', measured: `${fmt(100 * withStreams!.delivered, 1)}%`, met: withStreams!.delivered >= 0.95 });
    log(table(['target', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'events delivered / calls (slowest stream)'], rows.map((r) => [r.target, r.rps, r.p50, r.p99, r.errors, r.delivered] as (string | number)[])));
  } finally {
    await s.stop();
  }
  return { rows, checks, notes };
};
