// Part `routing` (cluster mode, docs/cluster.md): one gateway and three
// workers, 200 functions, calls whose function is Zipf-distributed (s = 1:
// the most popular function gets ~17% of the calls, the least ~0.1%), from a
// closed loop of 24 clients. Each routing policy runs on a fresh cluster: a
// pre-warm (every function called once, one at a time: a cluster that has
// been running at low load), a warm-up at full load, then the measured phase
// with the same call sequence for every policy. Measured: the warm-hit ratio
// (calls answered with x-lamina-cold-start: 0), cold starts away from the
// function's ring home, latency percentiles, throughput, and how many
// (function, worker) placements the policy needed.
//
// Two memory settings. Ample: 400 instances per worker (bounded hashing only:
// random and least-loaded end up with every function on every worker, 600+
// helper processes of the isolate tier, more than this shared machine should
// give a benchmark). Tight: 150 instances per worker, fewer than the 200
// functions, as on any cluster whose functions outnumber what one node keeps
// warm: every policy.
//
// Needs PostgreSQL (test/helpers/postgres.ts starts the local cluster and
// makes a scratch database). Runs on the isolate tier; falls back to the
// process tier with fewer functions when isolates are unavailable. Knobs for
// exploring: BENCH_ROUTING_{FUNCTIONS,CLIENTS,WARMUP_S,MEASURE_S} and
// BENCH_ROUTING_VARIANTS=bounded:0.5,random (policy[:epsilon],...), which
// then run at BENCH_ROUTING_INSTANCES (default 150) instances per worker.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HashRing } from '../../src/cluster/ring.js';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/postgres.js';
import { request } from '../lib/load.js';
import { log, type Check, type Part } from '../lib/part.js';
import { FUNCTIONS, ROOT, packFunction, sleep } from '../lib/server.js';
import { summarize } from '../lib/stats.js';
import { table } from '../lib/table.js';

const TOKEN = 'bench-routing-token';
interface Variant {
  policy: string;
  epsilon?: number;
}
const MEMORY_MB = 64;

interface Node {
  name: string;
  url: string;
  child: ChildProcess;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) if (c.pid) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
});

function env(db: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, LAMINA_DATABASE_URL: db, LAMINA_TOKEN: TOKEN, LAMINA_CLUSTER_SECRET: `${TOKEN}-secret`, LAMINA_LOG_LEVEL: 'warn' };
  for (const k of ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS', 'LAMINA_DATA_DIR', 'LAMINA_SANDBOX', 'LAMINA_POOL_SIZE', 'LAMINA_ROUTING']) delete e[k];
  return e;
}

async function launch(name: string, args: string[], e: NodeJS.ProcessEnv, what: 'gateway' | 'worker'): Promise<Node> {
  const child = spawn(process.execPath, ['bin/lamina.js', what, ...args], { cwd: ROOT, env: e, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  live.add(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-8192)));
  child.stderr!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-8192)));
  const re = new RegExp(`Lamina ${what} listening on (\\S+)`);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 60 s: ${out.slice(-500)}`)), 60_000);
    child.stdout!.on('data', () => {
      const m = re.exec(out);
      if (m) (clearTimeout(timer), resolve(m[1]!));
    });
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`${name} exited with ${code}: ${out.trim().split('\n').slice(-3).join(' | ')}`))));
  });
  return { name, url, child };
}

async function stop(n: Node): Promise<void> {
  if (n.child.exitCode === null && n.child.signalCode === null) {
    const exited = new Promise((r) => n.child.once('exit', r));
    n.child.kill('SIGTERM');
    const t = setTimeout(() => n.child.pid && process.kill(-n.child.pid, 'SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }
  live.delete(n.child);
}

async function admin(url: string, method: string, route: string, body?: Buffer): Promise<any> {
  const res = await fetch(`${url}/api/v1${route}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/gzip' } : {}) },
    body: body ? new Uint8Array(body) : undefined,
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${route}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** mulberry32: the same call sequence for every policy. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function zipfSampler(n: number, s: number, rnd: () => number): () => number {
  const cdf: number[] = [];
  let acc = 0;
  const total = Array.from({ length: n }, (_, i) => 1 / (i + 1) ** s).reduce((a, b) => a + b, 0);
  for (let i = 0; i < n; i++) cdf.push((acc += 1 / (i + 1) ** s / total));
  return () => {
    const u = rnd();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

interface Phase {
  calls: number;
  warm: number;
  errors: number;
  latencies: number[];
  perWorker: Map<string, number>;
  placements: Set<string>;
  /** Cold starts: function rank and worker. */
  colds: { rank: number; worker: string }[];
  elapsedMs: number;
  statuses: Record<string, number>;
}

/** `clients` closed-loop callers for `ms`, each call to a Zipf-chosen function. */
async function drive(url: string, names: string[], clients: number, ms: number, next: () => number): Promise<Phase> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const p: Phase = { calls: 0, warm: 0, errors: 0, latencies: [], perWorker: new Map(), placements: new Set(), colds: [], elapsedMs: 0, statuses: {} };
  const t0 = performance.now();
  const end = t0 + ms;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const rank = next();
        const fn = names[rank]!;
        try {
          const r = await request(`${url}/run/${fn}`, { body: '{}', agent });
          p.statuses[r.status] = (p.statuses[r.status] ?? 0) + 1;
          if (r.status !== 200) {
            p.errors++;
            continue;
          }
          p.calls++;
          p.latencies.push(r.ms);
          const w = String(r.headers['x-lamina-worker']);
          if (r.headers['x-lamina-cold-start'] === '0') p.warm++;
          else p.colds.push({ rank, worker: w });
          p.perWorker.set(w, (p.perWorker.get(w) ?? 0) + 1);
          p.placements.add(`${fn}@${w}`);
        } catch (err) {
          p.errors++;
          const k = (err as NodeJS.ErrnoException).code ?? 'error';
          p.statuses[k] = (p.statuses[k] ?? 0) + 1;
          await sleep(10);
        }
      }
    }),
  );
  p.elapsedMs = performance.now() - t0;
  agent.destroy();
  return p;
}

export const routing: Part = async (o) => {
  const rows: Record<string, unknown>[] = [];
  const checks: Check[] = [];
  const notes: string[] = [];
  const knob = (k: string, d: number) => (process.env[`BENCH_ROUTING_${k}`] ? Number(process.env[`BENCH_ROUTING_${k}`]) : d);
  const clients = knob('CLIENTS', o.short ? 8 : 24);
  const warmupMs = knob('WARMUP_S', o.short ? 2 : 60) * 1000;
  const measureMs = knob('MEASURE_S', o.short ? 3 : 30) * 1000;
  const wanted = o.tiers.includes('isolate') ? 'isolate' : (o.tiers[0] ?? 'process');

  let db: TestDatabase | undefined;
  const base = mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-routing-'));
  try {
    db = await createTestDatabase('lamina_bench');
    const e = env(db.url);
    let tier = wanted;
    let nFunctions = knob('FUNCTIONS', o.short ? 40 : 200);
    let scale = nFunctions / 200;

    const startCluster = async (policy: string, epsilon: number, budgetMb: number, tag: string): Promise<Node[]> => {
      const gw = await launch(`gateway (${policy})`, ['--port', '0', '--routing', policy, '--epsilon', String(epsilon), '--data-dir', path.join(base, `gw-${tag}`)], e, 'gateway');
      const nodes = [gw];
      try {
        nodes.push(
          ...(await Promise.all(
            ['w1', 'w2', 'w3'].map((id) =>
              launch(`worker ${id}`, ['--gateway', gw.url, '--port', '0', '--id', id, '--data-dir', path.join(base, `${id}-${tag}`), '--sandbox', tier, '--pool-size', tier === 'isolate' ? '8' : '2', '--memory-budget', String(budgetMb)], e, 'worker'),
            ),
          )),
        );
        for (let i = 0; ; i++) {
          const v = await admin(gw.url, 'GET', '/workers');
          if (v.workers.filter((w: { state: string }) => w.state === 'up').length === 3) break;
          if (i > 200) throw new Error(`workers did not come up: ${JSON.stringify(v.workers)}`);
          await sleep(50);
        }
      } catch (err) {
        for (const n of nodes) await stop(n);
        throw err;
      }
      return nodes;
    };

    // Deploy once (through a first gateway); every policy then runs on fresh workers and a fresh gateway.
    let names: string[] = [];
    const deployAll = async (url: string) => {
      names = Array.from({ length: nFunctions }, (_, i) => `z${String(i).padStart(3, '0')}`);
      const archive = await packFunction(path.join(FUNCTIONS, 'noop'), { sandbox: tier, memoryMb: MEMORY_MB });
      for (let i = 0; i < names.length; i += 8) await Promise.all(names.slice(i, i + 8).map((n) => admin(url, 'PUT', `/functions/${n}`, archive)));
    };
    {
      let nodes: Node[];
      try {
        nodes = await startCluster('bounded', 1, 1000 * MEMORY_MB, 'deploy');
      } catch (err) {
        if (tier === 'process') throw err;
        notes.push(`tier ${tier} unavailable (${(err as Error).message.slice(0, 200)}); using the process tier with 60 functions`);
        tier = 'process';
        nFunctions = o.short ? 20 : 60;
        scale = nFunctions / 200;
        nodes = await startCluster('bounded', 1, 1000 * MEMORY_MB, 'deploy');
      }
      try {
        await deployAll(nodes[0]!.url);
      } finally {
        for (const n of nodes) await stop(n);
      }
    }
    log(`  ${nFunctions} functions (${tier} tier, ${MEMORY_MB} MB each), Zipf s=1, ${clients} clients, warm-up ${warmupMs / 1000} s, measured ${measureMs / 1000} s per run`);

    const inst = (n: number) => Math.max(4, Math.round(n * scale));
    const custom = process.env.BENCH_ROUTING_VARIANTS;
    const scenarios: { memory: string; instances: number; variants: Variant[] }[] = custom
      ? [
          {
            memory: `${knob('INSTANCES', inst(150))} instances/worker`,
            instances: knob('INSTANCES', inst(150)),
            variants: custom.split(',').map((x) => {
              const [policy, eps] = x.split(':');
              return { policy: policy!, ...(eps ? { epsilon: Number(eps) } : {}) };
            }),
          },
        ]
      : o.short
        ? [{ memory: `${inst(150)} instances/worker`, instances: inst(150), variants: [{ policy: 'bounded', epsilon: 1 }, { policy: 'random' }] }]
        : [
            { memory: 'ample: 400 instances/worker', instances: 400, variants: [{ policy: 'bounded', epsilon: 0.25 }, { policy: 'bounded', epsilon: 1 }] },
            {
              memory: `tight: ${inst(150)} instances/worker`,
              instances: inst(150),
              variants: [{ policy: 'bounded', epsilon: 0.25 }, { policy: 'bounded', epsilon: 1 }, { policy: 'random' }, { policy: 'least-loaded' }],
            },
          ];
    const ring = new HashRing(['w1', 'w2', 'w3']);
    for (const sc of scenarios) {
      for (const v of sc.variants) {
        const epsilon = v.epsilon ?? 1;
        const policy = v.policy === 'bounded' ? `bounded e=${epsilon}` : v.policy;
        const nodes = await startCluster(v.policy, epsilon, sc.instances * MEMORY_MB, `${v.policy}-${epsilon}-${sc.instances}`);
        try {
          const next = zipfSampler(names.length, 1.0, prng(42));
          const order = names.map((n, i) => ({ n, k: prng(i + 1)() })).sort((a, b) => a.k - b.k);
          for (const { n } of order) await request(`${nodes[0]!.url}/run/${n}`, { body: '{}' });
          const warm = await drive(nodes[0]!.url, names, clients, warmupMs, next);
          const m = await drive(nodes[0]!.url, names, clients, measureMs, next);
          const s = summarize(m.latencies);
          const shares = [...m.perWorker.values()].map((n) => n / m.calls);
          const row = {
            memory: sc.memory,
            policy,
            calls: m.calls,
            warmHitPct: (100 * m.warm) / Math.max(1, m.calls),
            coldStarts: m.calls - m.warm,
            coldAwayFromHome: m.colds.filter((x) => ring.home(names[x.rank]!) !== x.worker).length,
            warmupColdStarts: warm.calls - warm.warm,
            p50: s.p50,
            p99: s.p99,
            max: s.max,
            rps: m.calls / (m.elapsedMs / 1000),
            placements: m.placements.size,
            maxWorkerShare: Math.max(...shares, 0),
            errors: m.errors + warm.errors,
          };
          rows.push(row);
          if (row.errors > 0) notes.push(`${policy}/${sc.memory}: ${row.errors} errors: ${JSON.stringify({ ...warm.statuses, ...m.statuses })}`);
          log(`  ${sc.memory.padEnd(28)} ${policy.padEnd(14)} warm ${row.warmHitPct.toFixed(3)}%  cold ${row.coldStarts} (${row.coldAwayFromHome} away)  p99 ${s.p99.toFixed(1)} ms  ${Math.round(row.rps)} calls/s  placements ${row.placements}`);
        } finally {
          for (const n of nodes) await stop(n);
        }
      }
    }
    log('');
    log(
      table(
        ['memory', 'policy', 'calls', 'warm hits %', 'cold starts', 'away from home', 'p50 ms', 'p99 ms', 'calls/s', 'placements', 'busiest worker'],
        rows.map((r) => [
          r.memory as string,
          r.policy as string,
          r.calls as number,
          Number((r.warmHitPct as number).toFixed(3)),
          r.coldStarts as number,
          r.coldAwayFromHome as number,
          r.p50 as number,
          r.p99 as number,
          r.rps as number,
          r.placements as number,
          `${Math.round(100 * (r.maxWorkerShare as number))}%`,
        ]),
      ),
    );
    const bounded = rows.filter((x) => x.policy === 'bounded e=1');
    if (bounded.length) {
      const best = Math.max(...bounded.map((x) => x.warmHitPct as number));
      checks.push({ aim: 'warm-hit ratio >= 99.9% with bounded loads (default epsilon 1)', measured: bounded.map((x) => `${x.memory}: ${(x.warmHitPct as number).toFixed(3)}%`).join(', '), met: best >= 99.9 });
    }
    notes.push(`tier ${tier}; ${nFunctions} functions; loads for bounded hashing are the gateway's calls in flight per worker; all processes share this machine's ${os.availableParallelism()} cores`);
  } finally {
    for (const c of live) if (c.pid) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
    await db?.drop().catch(() => undefined);
    rmSync(base, { recursive: true, force: true });
  }
  return { rows, checks, notes };
};
