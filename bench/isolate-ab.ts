// The isolate tier's warm JSON echo (issue 15: "isolate ic=64 at workerd's
// req/s"), before/after: this checkout's server and, with --base DIR, another
// built checkout's server, beside the bare Node server and workerd, wrk rounds
// interleaved across every target (reversed every other round) so drift on a
// shared machine hits all alike; medians reported. CPU per call is split into
// the server process and its descendants (the isolate hosts), from /proc.
//
//   node --import tsx bench/isolate-ab.ts [--base [label=]/path/to/built/checkout ...]
//        [--seconds 5] [--rounds 3] [--conns 32] [--ic 64] [--process]
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { wrk } from './lib/load.js';
import { interleavedRounds } from './lib/rounds.js';
import { FUNCTIONS, startBaseline, startLamina, type Proc } from './lib/server.js';
import { median } from './lib/stats.js';
import { table } from './lib/table.js';
import { startWorkerd } from './lib/workerd.js';

const { values } = parseArgs({
  options: {
    base: { type: 'string', multiple: true },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    conns: { type: 'string', default: '32' },
    ic: { type: 'string', default: '64' },
    /** Also this checkout's process tier (what the server does more for isolate calls). */
    process: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const BODY = '{"hello":"world"}';
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`isolate-ab ${new Date().toISOString()}, load average ${loadavg()}, ${ROUNDS} x ${SECONDS} s per point, wrk -t1, body ${BODY}`);

const procs: Proc[] = [];
try {
  const targets: { name: string; url: string; pid: number }[] = [];
  const bare = await startBaseline('bare');
  procs.push(bare);
  targets.push({ name: 'bare node', url: bare.url, pid: bare.pid });
  const w = await startWorkerd();
  procs.push(w);
  targets.push({ name: 'workerd', url: w.url, pid: w.pid });
  const bases = (values.base ?? []).map((b, i) => {
    const eq = b.indexOf('=');
    return eq > 0 ? { label: b.slice(0, eq), root: path.resolve(b.slice(eq + 1)) } : { label: i ? `base${i + 1}` : 'base', root: path.resolve(b) };
  });
  const servers: { label: string; root: string | undefined }[] = [...bases, { label: bases.length ? 'new' : 'isolate', root: undefined }];
  const tiered = servers.map((x) => ({ ...x, tier: 'isolate' }));
  if (values.process) tiered.push({ label: 'process', root: undefined, tier: 'process' });
  for (const { label, root, tier } of tiered) {
    const s = await startLamina({ sandbox: tier, ...(root ? { root } : {}) });
    procs.push(s);
    await s.deploy('noop-ic', path.join(FUNCTIONS, 'noop'), { sandbox: tier, instanceConcurrency: Number(values.ic) });
    targets.push({ name: `${label} ic=${values.ic}`, url: `${s.url}/run/noop-ic`, pid: s.pid });
  }
  const rows: (string | number)[][] = [];
  for (const c of values.conns.split(',').map(Number)) {
    for (const t of targets) await wrk(t.url, c, 2, BODY);
    const loads: string[] = [loadavg()];
    const runs = await interleavedRounds(targets, ROUNDS, (t) => wrk(t.url, c, SECONDS, BODY));
    loads.push(loadavg());
    const wrps = median(runs.get('workerd')!.map((x) => x.rps));
    for (const t of targets) {
      const rs = runs.get(t.name)!;
      const rps = median(rs.map((x) => x.rps));
      rows.push([c, t.name, rps, median(rs.map((x) => x.p50)), rs.reduce((a, x) => a + x.errors, 0), median(rs.map((x) => x.serverUs)), median(rs.map((x) => x.sandboxUs)), median(rs.map((x) => x.otherCores)), rps / wrps]);
    }
    console.log(`c=${c}: load average ${loads.join(' -> ')}`);
  }
  console.log(table(['conns', 'target', 'req/s', 'p50 ms', 'errors', 'server CPU us/req', 'host/runtime CPU us/req', 'other load cores', 'vs workerd'], rows));
} finally {
  for (const p of procs.reverse()) await p.stop();
}
