// The HTTP shapes against JSON mode (issue 10), short and optionally before/after:
// per tier, the same no-op as a JSON-mode function, a request-mode one and a fetch
// handler (bench/functions/noop*, all ic=1), on this checkout's server and, with
// --base DIR, on another built checkout's server started beside it; wrk rounds
// interleaved across every target so drift hits all alike, medians reported.
// "cost/call vs JSON" is (JSON req/s) / (shape req/s) on the same server.
//
//   node --import tsx bench/http-shapes.ts [--tiers process,container,isolate]
//        [--base /path/to/built/checkout] [--seconds 5] [--rounds 3] [--conns 1,32]
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { wrk } from './lib/load.js';
import { warmUp, type WarmTarget } from './lib/warmup.js';
import { interleavedRounds } from './lib/rounds.js';
import { FUNCTIONS, startLamina, type LaminaServer } from './lib/server.js';
import { median } from './lib/stats.js';
import { table } from './lib/table.js';

const { values } = parseArgs({
  options: {
    tiers: { type: 'string', default: 'process,container,isolate' },
    base: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    conns: { type: 'string', default: '1,32' },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const BODY = '{"hello":"world"}';
const SHAPES = [
  { fn: 'noop', label: 'json', manifest: {} },
  { fn: 'noop-request', label: 'request', manifest: { http: { event: 'request' } } },
  { fn: 'noop-fetch', label: 'fetch', manifest: {} },
] as const;

const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`http-shapes ${new Date().toISOString()}, load average ${loadavg()}, ${ROUNDS} x ${SECONDS} s per point, wrk -t1, body ${BODY}`);

for (const tier of values.tiers.split(',')) {
  const servers: { label: string; s: LaminaServer }[] = [];
  try {
    if (values.base) servers.push({ label: 'base', s: await startLamina({ sandbox: tier, root: path.resolve(values.base) }) });
    servers.push({ label: values.base ? 'new' : tier, s: await startLamina({ sandbox: tier }) });
    const targets: { name: string; server: string; shape: string; url: string; pid: number; lamina: WarmTarget['lamina'] }[] = [];
    for (const { label, s } of servers) {
      for (const shape of SHAPES) {
        await s.deploy(shape.fn, path.join(FUNCTIONS, shape.fn), { sandbox: tier, instanceConcurrency: 1, ...shape.manifest });
        targets.push({ name: `${tier} ${label} ${shape.label}`, server: label, shape: shape.label, url: `${s.url}/run/${shape.fn}`, pid: s.pid, lamina: { server: s, fn: shape.fn, ic: 1 } });
      }
    }
    const rows: (string | number)[][] = [];
    for (const c of values.conns.split(',').map(Number)) {
      // Warm-up (bench/lib/warmup.ts): an instance per connection, then JIT-warm instances.
      for (const t of targets) await warmUp(t, c, (sec) => wrk(t.url, c, sec, BODY));
      const runs = await interleavedRounds(targets, ROUNDS, (t) => wrk(t.url, c, SECONDS, BODY));
      for (const t of targets) {
        const rs = runs.get(t.name)!;
        const rps = median(rs.map((x) => x.rps));
        const json = median(runs.get(`${tier} ${t.server} json`)!.map((x) => x.rps));
        rows.push([c, t.name, rps, median(rs.map((x) => x.p50)), rs.reduce((a, x) => a + x.errors, 0), median(rs.map((x) => x.serverUs)), median(rs.map((x) => x.sandboxUs)), median(rs.map((x) => x.otherCores)), t.shape === 'json' ? NaN : json / rps]);
      }
    }
    console.log(`load average ${loadavg()} after ${tier}`);
    console.log(table(['conns', 'target', 'req/s', 'p50 ms', 'errors', 'server CPU us/req', 'sandbox CPU us/req', 'other load cores', 'cost/call vs JSON'], rows));
  } catch (err) {
    console.log(`tier ${tier} skipped: ${(err as Error).message}`);
  } finally {
    for (const { s } of servers.reverse()) await s.stop();
  }
}
