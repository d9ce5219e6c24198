// Before/after for the warm JSON path: the same no-op on this checkout's server
// and on another built checkout's (--base), per tier, at 1 connection (ic=1,
// the latency aim) and at 32 (ic=64, one instance takes them all: the
// throughput aim, where the server's own thread is the limit). wrk rounds are
// interleaved across all targets, with a bare Node server among them, so drift
// hits every target alike; medians reported. What counts is the server's CPU per
// call (from /proc) and req/s relative to the bare server of the same run.
//
//   node --import tsx bench/ab-warm.ts --base /path/to/built/checkout
//        [--tiers process,container] [--seconds 5] [--rounds 4]
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { wrk } from './lib/load.js';
import { interleavedRounds } from './lib/rounds.js';
import { FUNCTIONS, startBaseline, startLamina, type Proc } from './lib/server.js';
import { median } from './lib/stats.js';
import { table } from './lib/table.js';

const { values } = parseArgs({
  options: {
    tiers: { type: 'string', default: 'process,container' },
    base: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '4' },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const BODY = '{"hello":"world"}';
const POINTS = [
  { conns: 1, ic: 1 },
  { conns: 32, ic: 64 },
];
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`ab-warm ${new Date().toISOString()}, load average ${loadavg()}, ${ROUNDS} x ${SECONDS} s per point, wrk -t1, body ${BODY}`);

interface Target { name: string; url: string; pid: number; conns: number; sandboxed: boolean }
const procs: Proc[] = [];
try {
  const bare = await startBaseline('bare');
  procs.push(bare);
  const targets: Target[] = POINTS.map((p) => ({ name: 'bare node', url: bare.url, pid: bare.pid, conns: p.conns, sandboxed: false }));
  for (const tier of values.tiers.split(',')) {
    for (const [label, root] of [...(values.base ? [['base', path.resolve(values.base)]] : []), ['new', undefined]] as const) {
      const s = await startLamina({ sandbox: tier, ...(root ? { root } : {}) });
      procs.push(s);
      for (const p of POINTS) {
        const fn = `noop-ic${p.ic}`;
        await s.deploy(fn, path.join(FUNCTIONS, 'noop'), { sandbox: tier, instanceConcurrency: p.ic });
        targets.push({ name: `${tier} ${label} ic=${p.ic}`, url: `${s.url}/run/${fn}`, pid: s.pid, conns: p.conns, sandboxed: true });
      }
    }
  }
  const rows: (string | number)[][] = [];
  for (const p of POINTS) {
    const these = targets.filter((t) => t.conns === p.conns);
    for (const t of these) await wrk(t.url, p.conns, 2, BODY); // warm-up: instances started, code optimized
    const runs = await interleavedRounds(these, ROUNDS, (t) => wrk(t.url, p.conns, SECONDS, BODY));
    const bareRps = median(runs.get('bare node')!.map((x) => x.rps));
    const bareP50 = median(runs.get('bare node')!.map((x) => x.p50));
    for (const t of these) {
      const rs = runs.get(t.name)!;
      const rps = median(rs.map((x) => x.rps));
      const p50 = median(rs.map((x) => x.p50));
      rows.push([p.conns, t.name, rps, p50, rs.reduce((a, x) => a + x.errors, 0), median(rs.map((x) => x.serverUs)), median(rs.map((x) => x.sandboxUs)), median(rs.map((x) => x.otherCores)), t.sandboxed ? p50 - bareP50 : NaN, t.sandboxed ? rps / bareRps : NaN]);
    }
  }
  console.log(`load average ${loadavg()} at the end`);
  console.log(table(['conns', 'target', 'req/s', 'p50 ms', 'errors', 'server CPU us/req', 'sandbox CPU us/req', 'other load cores', '+p50 vs bare ms', 'req/s vs bare'], rows));
} finally {
  for (const p of procs.reverse()) await p.stop();
}
