// Part `soak-cluster` (issue 16, cluster variant): the soak's mix (lib/soak-mix.ts)
// through `lamina gateway` and three `lamina worker`s on a PostgreSQL of the
// benchmark's own (test/helpers/private-postgres.ts), plus a loop of async calls, while
// a worker is SIGKILLed and started again every 30 s and PostgreSQL is
// restarted once. 10 minutes full, 45 s --short (--duration S).
// Verdicts: only calls in flight on a killed worker fail (502 WorkerCrashed from
// that worker, while the call was open), besides what the functions answer by
// design; no hung call; every accepted async event ran (its record's final
// status is Success); nothing of any gateway or worker process (the killed ones
// included) is left: processes in their cgroups, cgroups, run dirs.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { log, type Check, type Part } from '../lib/part.js';
import { startPrivatePostgres, type PrivatePostgres } from '../../test/helpers/private-postgres.js';
import { ROOT, packFunction, sleep } from '../lib/server.js';
import { FNS, GIVE_UP_MS, callOnce, classifyTimes, leftovers, withMarker, type Fn, type Sample } from '../lib/soak-mix.js';
import { percentile } from '../lib/stats.js';
import { table } from '../lib/table.js';

const TOKEN = 'bench-soak-cluster-token';
const WORKERS = ['w1', 'w2', 'w3'];
/** The async function: short, so the queue drains within the run. */
const ASYNC_FN: Fn = { name: 'queued', code: 'export async function handler(e) { await new Promise((r) => setTimeout(r, 20)); return { n: e.n }; }', manifest: { timeoutMs: 5000, concurrency: 4 }, expected: [202], loops: 2, body: '{}' };

interface Node {
  id: string;
  child: ChildProcess;
  url: string;
  exited: Promise<void>;
  /** The last 64 KiB of its stdout and stderr. */
  output: () => string;
}

/** Processes told to stop (SIGTERM at the end, or the chaos's SIGKILL), and exits nobody asked for. */
const stopping = new WeakSet<ChildProcess>();
const unexpectedExits: string[] = [];

/** Every process this part started, for the last-resort kill on exit. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) if (c.pid && c.exitCode === null && c.signalCode === null) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
});

function clusterEnv(db: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    LAMINA_DATABASE_URL: db,
    LAMINA_TOKEN: TOKEN,
    LAMINA_CLUSTER_SECRET: `${TOKEN}-secret`,
    LAMINA_LOG_LEVEL: 'warn',
    // A SIGKILLed worker's connections are reset at once (its calls fail then); the heartbeat timeout
    // only decides when the gateway stops routing to it. 5 s: at a load average of 20 on 2 cores a
    // live worker's event loop stalled past 2.5 s and was declared dead (its calls failed with it).
    LAMINA_HEARTBEAT_MS: '200',
    LAMINA_HEARTBEAT_TIMEOUT_MS: '5000',
    // Events held by a killed worker are taken over after 3 s rather than 6.
    LAMINA_ASYNC_LEASE_MS: '3000',
  };
  for (const k of ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS', 'LAMINA_DATA_DIR', 'LAMINA_SANDBOX', 'LAMINA_POOL_SIZE', 'LAMINA_ROUTING']) delete e[k];
  return e;
}

/** Spawns `lamina gateway|worker ...` (in our session, not detached) and waits for its URL. */
async function launch(what: 'gateway' | 'worker', id: string, args: string[], env: NodeJS.ProcessEnv): Promise<Node> {
  const child = spawn(process.execPath, ['bin/lamina.js', what, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  const keep = (b: Buffer) => (out = (out + b.toString()).slice(-65_536));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A gateway or worker that ends without being told to is a finding: its last words go in the notes.
  child.once('exit', (code, signal) => {
    if (!stopping.has(child)) unexpectedExits.push(`${what} ${id} exited (${signal ?? `code ${code}`}) unasked: ${out.trim().split('\n').slice(-4).join(' | ').slice(-600)}`);
  });
  const re = new RegExp(`Lamina ${what} listening on (\\S+)`);
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} ${id} did not start in 90 s: ${out.slice(-400)}`)), 90_000);
      child.stdout!.on('data', () => {
        const m = re.exec(out);
        if (m) (clearTimeout(timer), resolve(m[1]!));
      });
      void exited.then(() => (clearTimeout(timer), reject(new Error(`${what} ${id} exited: ${out.trim().split('\n').slice(-3).join(' | ')}`))));
    });
    return { id, child, url, exited, output: () => out };
  } catch (err) {
    await stopNode({ id, child, url: '', exited, output: () => out });
    throw err;
  }
}

/** SIGTERM, then SIGKILL after 15 s; waits for the exit. */
async function stopNode(n: Node): Promise<void> {
  stopping.add(n.child);
  if (n.child.exitCode === null && n.child.signalCode === null) {
    n.child.kill('SIGTERM');
    const t = setTimeout(() => n.child.kill('SIGKILL'), 15_000);
    await n.exited;
    clearTimeout(t);
  }
  live.delete(n.child);
}

async function admin(url: string, method: string, route: string, body?: Buffer): Promise<any> {
  const res = await fetch(`${url}/api/v1${route}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/gzip' } : {}) },
    body: body ? new Uint8Array(body) : undefined,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${route}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}

export const soakCluster: Part = async (o) => {
  const durationMs = (o.durationS ?? (o.short ? 45 : 600)) * 1000;
  const firstKillMs = o.short ? 10_000 : 15_000;
  const killEveryMs = 30_000;
  const notes: string[] = [];
  const rows: Record<string, unknown>[] = [];
  unexpectedExits.length = 0;
  const base = mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-soakc-'));
  const nodes: Node[] = [];
  /** Pid of every gateway and worker process started, killed ones included (leftover check). */
  const pids: number[] = [];
  let db: PrivatePostgres | undefined;
  let stop = false;
  try {
    db = await startPrivatePostgres();
    const env = clusterEnv(db.url);
    const gw = await launch('gateway', 'gateway', ['--port', '0', '--data-dir', path.join(base, 'gw')], env);
    nodes.push(gw);
    pids.push(gw.child.pid!);
    const gwLog = gw.output;
    const workers = new Map<string, Node>();
    const startWorker = async (id: string): Promise<Node> => {
      const w = await launch('worker', id, ['--gateway', gw.url, '--port', '0', '--id', id, '--data-dir', path.join(base, id), '--pool-size', '1'], env);
      nodes.push(w);
      pids.push(w.child.pid!);
      workers.set(id, w);
      return w;
    };
    // One at a time: three node processes starting at once on a loaded 2-core machine are slow to register.
    for (const id of WORKERS) await startWorker(id);
    for (let i = 0; ; i++) {
      const v = await admin(gw.url, 'GET', '/workers');
      if (v.workers.filter((w: { state: string }) => w.state === 'up').length === WORKERS.length) break;
      if (i > 600) throw new Error(`workers did not come up: ${JSON.stringify(v.workers)}`);
      await sleep(100);
    }
    const tier = ((await admin(gw.url, 'GET', '/workers')).workers[0]?.tiers ?? []).join('/') || 'default';

    // Deploy the mix and the async function through the gateway.
    const archives = new Map<string, Buffer>();
    for (const f of [...FNS, ASYNC_FN]) {
      const d = path.join(base, `fn-${f.name}`);
      mkdirSync(d);
      writeFileSync(path.join(d, 'index.mjs'), withMarker(f));
      archives.set(f.name, await packFunction(d, { name: f.name, ...f.manifest }));
      await admin(gw.url, 'PUT', `/functions/${f.name}`, archives.get(f.name));
    }
    for (const f of FNS) await callOnce(gw.url, f, performance.now(), GIVE_UP_MS);
    notes.push(`tier ${tier}; ${(durationMs / 1000).toFixed(0)} s; load average at start ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other work on the machine included)`);

    const t0 = performance.now();
    const samples: Sample[] = [];
    const accepted: string[] = [];
    const asyncRefused: Sample[] = [];
    const workerKills: { at: number; id: string; restartedAfterMs: number }[] = [];
    let pgRestart: { at: number; downMs: number } | undefined;
    let pgDown: { from: number; to: number } | undefined;
    let redeploys = 0;
    const adminFailures: string[] = [];

    const loop = async (f: Fn): Promise<void> => {
      while (!stop) samples.push(await callOnce(gw.url, f, t0, GIVE_UP_MS));
    };
    let n = 0;
    const asyncLoop = async (): Promise<void> => {
      while (!stop) {
        const started = performance.now();
        try {
          const res = await fetch(`${gw.url}/run/${ASYNC_FN.name}`, { method: 'POST', body: JSON.stringify({ n: n++ }), headers: { 'content-type': 'application/json', 'x-lamina-invocation-type': 'Event' }, signal: AbortSignal.timeout(GIVE_UP_MS) });
          const text = await res.text();
          if (res.status === 202) accepted.push((JSON.parse(text) as { requestId: string }).requestId);
          else asyncRefused.push({ fn: ASYNC_FN.name, at: started - t0, ms: performance.now() - started, status: res.status, type: 'refused', message: text.slice(0, 200) });
        } catch (err) {
          asyncRefused.push({ fn: ASYNC_FN.name, at: started - t0, ms: performance.now() - started, status: 0, type: 'NoAnswer', message: (err as Error).message });
        }
        await sleep(25);
      }
    };
    const every = async (ms: number, offset: number, action: () => Promise<void>): Promise<void> => {
      await sleep(offset);
      while (!stop) {
        await action().catch((err: Error) => adminFailures.push(`${((performance.now() - t0) / 1000).toFixed(1)} s: ${err.message.slice(0, 160)}`));
        await sleep(ms);
      }
    };

    const tasks: Promise<void>[] = [];
    for (const f of FNS) for (let i = 0; i < Math.ceil(f.loops / 2); i++) tasks.push(loop(f));
    for (let i = 0; i < ASYNC_FN.loops; i++) tasks.push(asyncLoop());
    tasks.push(every(10_000, 10_000, async () => {
      await admin(gw.url, 'PUT', '/functions/fast', await packFunction(path.join(base, 'fn-fast'), { name: 'fast', ...FNS[0]!.manifest, env: { REV: String(++redeploys) } }));
    }));
    tasks.push(every(10_000, 5_000, async () => {
      await admin(gw.url, 'DELETE', '/functions/ephemeral');
      await sleep(1000);
      await admin(gw.url, 'PUT', '/functions/ephemeral', archives.get('ephemeral'));
    }));
    // Chaos: a random worker SIGKILLed every 30 s (the first 15 s in, 10 s in --short) and started again at once,
    // in the background, so the kills keep their pace however long a restart takes.
    const restarts: Promise<void>[] = [];
    tasks.push(every(killEveryMs, firstKillMs, async () => {
      const up = WORKERS.filter((id) => workers.get(id)!.child.exitCode === null && workers.get(id)!.child.signalCode === null);
      if (!up.length) return;
      const id = up[Math.floor(Math.random() * up.length)]!;
      const w = workers.get(id)!;
      const at = performance.now() - t0;
      stopping.add(w.child);
      w.child.kill('SIGKILL');
      await w.exited;
      live.delete(w.child);
      const k = { at, id, restartedAfterMs: NaN };
      workerKills.push(k);
      restarts.push((async () => {
        // The restart may meet PostgreSQL restarting: try again for a minute.
        for (let i = 0; ; i++) {
          try {
            await startWorker(id);
            break;
          } catch (err) {
            if (i >= 12) throw err;
            await sleep(5000);
          }
        }
        k.restartedAfterMs = performance.now() - t0 - at;
      })().catch((err: Error) => void adminFailures.push(`restart of ${id}: ${err.message.slice(0, 160)}`)));
    }));
    // PostgreSQL restarted once, halfway between two worker kills.
    tasks.push((async () => {
      await sleep(firstKillMs + Math.floor(durationMs / 2 / killEveryMs) * killEveryMs + killEveryMs / 2);
      if (stop) return;
      const at = performance.now() - t0;
      pgDown = { from: at, to: Infinity };
      const { downMs } = await db!.restart();
      pgRestart = { at, downMs };
      pgDown.to = at + downMs;
    })());
    await sleep(durationMs);
    stop = true;
    await Promise.all(tasks);
    await Promise.all(restarts);
    const elapsed = performance.now() - t0;

    // Every accepted event must run: wait for the queue to settle, then read each one's final status.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    let statuses = new Map<string, number>();
    let missing = 0;
    const drainStart = performance.now();
    try {
      for (;;) {
        const r = await client.query<{ status: string; n: string }>('select status, count(*) as n from async_events where request_id = any($1) group by status', [accepted]);
        statuses = new Map(r.rows.map((x) => [x.status, Number(x.n)]));
        missing = accepted.length - [...statuses.values()].reduce((a, b) => a + b, 0);
        const open = (statuses.get('Queued') ?? 0) + (statuses.get('Running') ?? 0);
        if (open === 0 || performance.now() - drainStart > (o.short ? 30_000 : 120_000)) break;
        await sleep(500);
      }
    } finally {
      await client.end();
    }
    const drainMs = performance.now() - drainStart;
    const ran = statuses.get('Success') ?? 0;
    const lost = accepted.length - ran;

    // Outcomes: what the function answers by design, or a WorkerCrashed from a worker killed while the call was open.
    const byFn = new Map(FNS.map((f) => [f.name, f]));
    const crashMade = (s: Sample) => s.status === 502 && s.type === 'WorkerCrashed' && workerKills.some((k) => k.id === s.worker && k.at >= s.at - 50 && k.at <= s.at + s.ms + 50);
    // An async call cannot be accepted while the database is down (the 202 means committed): a 503
    // saying so, for a call open while PostgreSQL restarted (or within 2 s after: the pool's
    // connections cut by the shutdown fail their next query), is the right answer. Nothing was accepted.
    const refusedForDb = (s: Sample) => s.status === 503 && /database/.test(s.message) && !!pgDown && s.at <= pgDown.to + 2000 && s.at + s.ms >= pgDown.from;
    const unexpected = [...samples.filter((s) => s.status !== 0 && !byFn.get(s.fn)!.expected.includes(s.status) && !crashMade(s)), ...asyncRefused.filter((s) => s.status !== 0 && !refusedForDb(s))];
    const { hung, late } = classifyTimes(samples);
    const hungAll = [...hung, ...asyncRefused.filter((s) => s.status === 0)];
    const crashed = samples.filter(crashMade);

    // Per window (10 s short, 30 s full): calls by outcome and latency.
    const windowMs = o.short ? 10_000 : 30_000;
    for (let w = 0; w * windowMs < elapsed; w++) {
      const inW = samples.filter((s) => s.at >= w * windowMs && s.at < (w + 1) * windowMs);
      const lat = inW.map((s) => s.ms).sort((a, b) => a - b);
      const outcomes: Record<string, number> = {};
      for (const s of inW) {
        const k = s.status === 200 ? 'ok' : s.type || String(s.status);
        outcomes[k] = (outcomes[k] ?? 0) + 1;
      }
      const events = [
        ...workerKills.filter((k) => k.at >= w * windowMs && k.at < (w + 1) * windowMs).map((k) => `kill ${k.id} @${(k.at / 1000).toFixed(0)}s`),
        ...(pgRestart && pgRestart.at >= w * windowMs && pgRestart.at < (w + 1) * windowMs ? [`pg restart @${(pgRestart.at / 1000).toFixed(0)}s`] : []),
      ];
      rows.push({ window: `${(w * windowMs) / 1000}-${((w + 1) * windowMs) / 1000} s`, calls: inW.length, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), maxMs: lat.length ? lat[lat.length - 1]! : NaN, chaos: events.join(', '), outcomes: Object.entries(outcomes).map(([k, v]) => `${k} ${v}`).join(', ') });
    }
    const cols = ['window', 'calls', 'p50Ms', 'p99Ms', 'maxMs', 'chaos', 'outcomes'];
    log(table(cols, rows.map((r) => cols.map((c) => r[c] as string | number))));

    const kinds = new Map<string, number>();
    for (const x of [...samples, ...asyncRefused]) if (x.status !== 200 && x.status !== 202) {
      const k = `${x.fn} ${x.status} ${x.type}: ${x.message.replace(/\(deadline [^)]*\)|[0-9a-f-]{36}|\d+/g, '#').slice(0, 90)}`;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    for (const [k, c] of [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 12)) notes.push(`failures: ${c} x ${k}`);
    for (const u of unexpected.slice(0, 10)) notes.push(`unexpected: ${u.fn} ${u.status} ${u.type} at ${(u.at / 1000).toFixed(1)} s after ${u.ms.toFixed(0)} ms${u.worker ? ` (worker ${u.worker})` : ''}: ${u.message.slice(0, 160)}`);
    for (const h of [...hungAll.slice(0, 10), ...late.slice(0, 5)]) notes.push(`${hungAll.includes(h) ? 'hung' : 'late'}: ${h.fn} ${h.status} ${h.type} at ${(h.at / 1000).toFixed(1)} s after ${h.ms.toFixed(0)} ms${h.worker ? ` (worker ${h.worker})` : ''}: ${h.message.slice(0, 160)}`);
    notes.push(`worker kills: ${workerKills.map((k) => `${k.id} at ${(k.at / 1000).toFixed(1)} s (up again after ${(k.restartedAfterMs / 1000).toFixed(1)} s)`).join(', ') || 'none'}`);
    notes.push(`PostgreSQL restart: ${pgRestart ? `at ${(pgRestart.at / 1000).toFixed(1)} s, down ${(pgRestart.downMs / 1000).toFixed(1)} s` : 'none (the run was shorter)'}`);
    notes.push(`${samples.length} sync calls, ${crashed.length} failed with WorkerCrashed from a killed worker; ${accepted.length} async events accepted (${asyncRefused.filter(refusedForDb).length} refused with 503 while PostgreSQL was down), statuses ${JSON.stringify(Object.fromEntries(statuses))}${missing ? `, ${missing} without a record` : ''}, queue settled ${(drainMs / 1000).toFixed(1)} s after the load; ${redeploys} redeploys of "fast"`);
    for (const line of gwLog().split('\n').filter((l) => /down|back|database|membership|restarted/i.test(l)).slice(-12)) notes.push(`gateway log: ${line.slice(0, 200)}`);
    for (const e of unexpectedExits) notes.push(e);
    for (const a of adminFailures.slice(0, 5)) notes.push(`admin step failed (not a call): ${a}`);

    // Stop everything; then nothing of any process this part started may be left.
    stop = true;
    for (const nd of nodes.slice().reverse()) await stopNode(nd);
    let left = { processes: 0, cgroups: 0, runDirs: 0 };
    for (let i = 0; i < 50; i++) {
      left = { processes: 0, cgroups: 0, runDirs: 0 };
      for (const p of pids) {
        const l = leftovers(p);
        left.processes += l.processes;
        left.cgroups += l.cgroups;
        left.runDirs += l.runDirs;
      }
      if (left.processes + left.cgroups + left.runDirs === 0) break;
      await sleep(100);
    }
    const checks: Check[] = [
      { aim: 'soak-cluster: unexpected failures (beyond WorkerCrashed from a killed worker) = 0', measured: `${unexpected.length} (${crashed.length} WorkerCrashed of ${samples.length} calls)`, met: unexpected.length === 0 },
      { aim: 'soak-cluster: hung calls = 0', measured: `${hungAll.length} (late: ${late.length})`, met: hungAll.length === 0 },
      { aim: 'soak-cluster: accepted async events lost = 0', measured: `${lost} of ${accepted.length}`, met: lost === 0 && accepted.length > 0 },
      { aim: 'soak-cluster: no gateway or worker ended unasked', measured: String(unexpectedExits.length), met: unexpectedExits.length === 0 },
      { aim: 'soak-cluster: nothing left of any gateway or worker (killed ones included)', measured: `${left.processes} processes, ${left.cgroups} cgroups, ${left.runDirs} run dirs (${pids.length} processes checked)`, met: left.processes + left.cgroups + left.runDirs === 0 },
    ];
    for (const c of checks) log(`  ${c.met ? 'ok    ' : 'FAILED'} ${c.aim}: ${c.measured}`);
    rows.push({ window: 'total', calls: samples.length, unexpected: unexpected.length, hung: hungAll.length, late: late.length, workerCrashed: crashed.length, workerKills: workerKills.length, asyncAccepted: accepted.length, asyncRan: ran, asyncLost: lost, pgDownMs: pgRestart?.downMs ?? NaN });
    return { rows, checks, notes };
  } finally {
    stop = true;
    for (const nd of nodes.slice().reverse()) await stopNode(nd).catch(() => undefined);
    await db?.stop().catch(() => undefined);
    rmSync(base, { recursive: true, force: true });
  }
};
