// Test harness for cluster mode: real `lamina gateway` and `lamina worker`
// processes on a fresh PostgreSQL database, talking real HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, call, childrenOf, deploy, makeFunction, type Reply } from './server.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';

export const TOKEN = 'cluster-test-token';
export const SECRET = 'cluster-test-secret';

export interface Proc {
  url: string;
  proc: ChildProcess;
  output: () => string;
  /** Stops with `signal` (default SIGTERM) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Spawns `node bin/lamina.js ...args` and waits for `Lamina <what> listening on URL`. */
export async function spawnLamina(what: 'gateway' | 'worker', args: string[], env: Record<string, string>, prefix?: string[]): Promise<Proc> {
  const cmd = prefix ? prefix[0]! : process.execPath;
  const argv = prefix ? [...prefix.slice(1), process.execPath, CLI, what, ...args] : [CLI, what, ...args];
  const proc = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const re = new RegExp(`Lamina ${what} listening on (https?://\\S+)`);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 90 s:\n${out}`)), 90_000);
    const check = () => {
      const m = re.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}:\n${out}`));
    });
  });
  return {
    url,
    proc,
    output: () => out,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export interface WorkerProc extends Proc {
  id: string;
  dataDir: string;
  /** Sandbox processes of this worker. */
  childPids(): number[];
}

export interface TestCluster {
  db: TestDatabase;
  gateway: Proc;
  workers: Map<string, WorkerProc>;
  env: Record<string, string>;
  startWorker(id: string, extra?: string[]): Promise<WorkerProc>;
  /** Waits until the gateway lists exactly these workers as up. */
  waitForUp(ids: string[], timeoutMs?: number): Promise<void>;
  workersView(): Promise<any>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  workers?: string[];
  gatewayArgs?: string[];
  workerArgs?: string[];
  env?: Record<string, string>;
}

export async function startCluster(o: ClusterOptions = {}): Promise<TestCluster> {
  const db = await createTestDatabase('lamina_cluster');
  const base = mkdtempSync(path.join(os.tmpdir(), 'lamina-cluster-'));
  const env: Record<string, string> = {
    LAMINA_DATABASE_URL: db.url,
    LAMINA_TOKEN: TOKEN,
    LAMINA_CLUSTER_SECRET: SECRET,
    LAMINA_HEARTBEAT_MS: '200',
    LAMINA_HEARTBEAT_TIMEOUT_MS: '2500',
    LAMINA_LOG_LEVEL: 'info',
    ...o.env,
  };
  const workers = new Map<string, WorkerProc>();
  let gateway: Proc | undefined;
  const cluster: TestCluster = {
    db,
    get gateway() {
      return gateway!;
    },
    workers,
    env,
    async startWorker(id, extra = []) {
      const dataDir = path.join(base, `worker-${id}`);
      const p = await spawnLamina(
        'worker',
        ['--gateway', gateway!.url, '--port', '0', '--id', id, '--data-dir', dataDir, '--sandbox', 'process', '--pool-size', '1', ...(o.workerArgs ?? []), ...extra],
        env,
      );
      const w: WorkerProc = { ...p, id, dataDir, childPids: () => childrenOf(p.proc.pid!) };
      workers.set(id, w);
      return w;
    },
    async waitForUp(ids, timeoutMs = 15_000) {
      const want = [...ids].sort().join(',');
      const deadline = Date.now() + timeoutMs;
      let last = '';
      for (;;) {
        const v = await cluster.workersView();
        last = JSON.stringify(v.workers?.map((w: any) => [w.id, w.state]));
        const up = (v.workers ?? []).filter((w: any) => w.state === 'up').map((w: any) => w.id).sort().join(',');
        if (up === want) return;
        if (Date.now() > deadline) throw new Error(`workers up: ${up || 'none'}, wanted ${want}; view: ${last}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async workersView() {
      const r = await call(`${gateway!.url}/api/v1/workers`, { headers: { authorization: `Bearer ${TOKEN}` } });
      if (r.status !== 200) throw new Error(`GET /api/v1/workers: ${r.status} ${r.text}`);
      return r.body;
    },
    async stop() {
      await Promise.all([...workers.values()].map((w) => w.stop()));
      await gateway?.stop();
      await db.drop().catch(() => undefined);
      rmSync(base, { recursive: true, force: true });
    },
  };
  try {
    gateway = await spawnLamina('gateway', ['--port', '0', '--data-dir', path.join(base, 'gateway'), ...(o.gatewayArgs ?? [])], env);
    await Promise.all((o.workers ?? []).map((id) => cluster.startWorker(id)));
    if (o.workers?.length) await cluster.waitForUp(o.workers);
  } catch (err) {
    await cluster.stop().catch(() => undefined);
    throw err;
  }
  return cluster;
}

export function run(url: string, name: string, event?: unknown): Promise<Reply> {
  return call(`${url}/run/${name}`, { method: 'POST', body: event === undefined ? undefined : JSON.stringify(event), headers: { 'content-type': 'application/json' } });
}

export function adminCall(url: string, method: string, route: string, body?: BodyInit, contentType?: string): Promise<Reply> {
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
  if (contentType) headers['content-type'] = contentType;
  return call(`${url}/api/v1${route}`, { method, headers, body });
}

/** Deploys `code` as index.mjs of function `name` (with `manifest`) through a gateway's admin API. */
export async function deployFn(url: string, name: string, code: string, manifest: Record<string, unknown> = {}): Promise<void> {
  const dir = makeFunction({ 'index.mjs': code }, { name, ...manifest }, name);
  try {
    await deploy({ url, token: TOKEN } as never, dir, name);
  } finally {
    rmSync(path.dirname(dir), { recursive: true, force: true });
  }
}
