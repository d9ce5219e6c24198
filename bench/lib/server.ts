// Servers under test, each a real process (so the load generator never shares
// their event loop): `lamina up` and the plain Node baselines. Every process is
// stopped with SIGTERM; whatever it left behind (sandboxes) is killed and reported.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { packDirectory } from '../../src/registry/archive.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FUNCTIONS = path.join(ROOT, 'bench/functions');

export interface Proc {
  name: string;
  url: string;
  pid: number;
  /** Stops the process (SIGTERM, then SIGKILL after 15 s) and kills any descendant it left. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  // Last resort (a part threw or the run was interrupted): kill every server and what it started.
  for (const c of live) {
    if (!c.pid) continue;
    for (const p of [c.pid, ...descendants(c.pid).map((d) => d.pid)]) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  }
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

/** Puts a process the bench started among those killed at its exit (servers started here are already). */
export function killAtExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Environment for servers: ours, less what would slow Node's start or leak settings in. */
function serverEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const k of ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS', 'LAMINA_TOKEN', 'LAMINA_DATA_DIR', 'LAMINA_SANDBOX', 'LAMINA_POOL_SIZE']) delete env[k];
  return env;
}

/** pid -> parent, start time and zombie state of every process, from /proc. */
function processTable(): Map<number, { ppid: number; start: string; zombie: boolean }> {
  const table = new Map<number, { ppid: number; start: string; zombie: boolean }>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(e), { ppid: Number(f[1]), start: f[19]!, zombie: f[0] === 'Z' });
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

/** Every descendant of pid (children, grandchildren...) with its start time. */
export function descendants(pid: number): { pid: number; start: string }[] {
  const table = processTable();
  const out: { pid: number; start: string }[] = [];
  const todo = [pid];
  while (todo.length) {
    const parent = todo.pop()!;
    for (const [p, info] of table) if (info.ppid === parent) (out.push({ pid: p, start: info.start }), todo.push(p));
  }
  return out;
}

/**
 * CPU time (user + system, ms) used so far by pid; with descendants, also by
 * every process below it, live or already reaped (through cutime/cstime).
 */
export function cpuTimeMs(pid: number, withDescendants = false): number {
  const tick = 10; // USER_HZ is 100 on Linux
  const one = (p: number) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
      return (f[11]! + f[12]! + (withDescendants ? f[13]! + f[14]! : 0)) * tick;
    } catch {
      return 0;
    }
  };
  let total = one(pid);
  if (withDescendants) for (const d of descendants(pid)) total += one(d.pid);
  return total;
}

/**
 * Measures what else ran on the machine meanwhile: CPU (in cores) used by
 * processes outside this benchmark's own process tree, from /proc/stat.
 */
export function backgroundLoad(): () => number {
  const busy = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return (f[0]! + f[1]! + f[2]!) * 10; // user nice system (not irq/softirq: mostly our own loopback traffic)
  };
  const b0 = busy();
  const o0 = cpuTimeMs(process.pid, true);
  const t0 = performance.now();
  return () => Math.max(0, busy() - b0 - (cpuTimeMs(process.pid, true) - o0)) / (performance.now() - t0);
}

/** Spawns a server and waits for the line that carries its URL. */
async function launch(name: string, args: string[], urlLine: RegExp, env: NodeJS.ProcessEnv, cwd = ROOT): Promise<{ child: ChildProcess; url: string; stdout: () => string }> {
  // Not detached: a new session would be a new scheduler autogroup (kernel.sched_autogroup_enabled),
  // so on a busy machine each server would get its own CPU share and a pool of k servers k shares.
  // In the benchmark's session, every target competes with other tenants on the same terms.
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-16_384)));
  child.stderr!.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-16_384)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 60 s`)), 60_000);
    const check = () => {
      const m = urlLine.exec(out);
      if (m) (clearTimeout(timer), resolve(m[1]!));
    };
    child.stdout!.on('data', check);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      const why = (err.trim() || out.trim()).split('\n').filter(Boolean).slice(-3).join(' | ');
      reject(new Error(`${name} exited (${signal ?? `code ${code}`}) before listening: ${why}`));
    });
  }).catch(async (e) => {
    if (child.exitCode === null && child.signalCode === null) await stopChild(name, child);
    throw e;
  });
  return { child, url, stdout: () => out };
}

async function stopChild(name: string, child: ChildProcess): Promise<void> {
  const pid = child.pid!;
  const kids = descendants(pid);
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      console.warn(`  ! ${name} (pid ${pid}) still running 15 s after SIGTERM: SIGKILL`);
      child.kill('SIGKILL');
    }, 15_000);
    await exited;
    clearTimeout(timer);
  }
  live.delete(child);
  // Give orphans a moment to notice (parent-death signals), then sweep. A Lamina
  // server's reaper (src/sandbox/leftovers.ts) clears up after it: let it finish first.
  await new Promise((r) => setTimeout(r, 100));
  const isReaper = (p: number) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('lamina-reaper'); } catch { return false; } };
  for (let i = 0; i < 100 && kids.some((k) => isReaper(k.pid)); i++) await new Promise((r) => setTimeout(r, 100));
  const table = processTable();
  const left = kids.filter((k) => { const t = table.get(k.pid); return t?.start === k.start && !t.zombie; });
  if (left.length) {
    const cmd = (pid: number) => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 160); } catch { return '?'; } };
    console.warn(`  ! ${name} left ${left.length} child process(es) running after it exited; killing them: ${left.map((k) => `${k.pid} ${cmd(k.pid)}`).join('; ')}`);
  }
  for (const k of left) try { process.kill(k.pid, 'SIGKILL'); } catch { /* gone */ }
}

export interface LaminaServer extends Proc {
  token: string;
  tier: string;
  dataDir: string;
  /** Deploys a function directory under `name`, with `manifest` written as its lamina.json. Returns the version. */
  deploy(name: string, dir: string, manifest?: Record<string, unknown>): Promise<number>;
  /** Deploys an archive made by packFunction. */
  upload(name: string, archive: Buffer): Promise<number>;
  remove(name: string): Promise<void>;
}

export interface LaminaOptions {
  sandbox?: string;
  poolSize?: number;
  /** Directory for `node --cpu-prof` output of the server process. */
  cpuProfDir?: string;
  /** Extra node flags for the server process (e.g. --perf-basic-prof for `perf`). */
  nodeArgs?: string[];
  /** Extra environment for the server (LAMINA_* settings). */
  env?: Record<string, string>;
  /** Another built checkout to run the server from (e.g. the base commit, for before/after runs). */
  root?: string;
}

/** A function directory as a .tar.gz, with `manifest` (if given) as its lamina.json. */
export async function packFunction(dir: string, manifest?: Record<string, unknown>): Promise<Buffer> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-fn-'));
  try {
    cpSync(dir, tmp, { recursive: true });
    if (manifest) writeFileSync(path.join(tmp, 'lamina.json'), JSON.stringify(manifest));
    return await packDirectory(tmp);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** `node bin/lamina.js up --port 0` in a fresh data dir. */
export async function startLamina(opts: LaminaOptions = {}): Promise<LaminaServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-data-'));
  const args = [
    ...(opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : []),
    ...(opts.nodeArgs ?? []),
    'bin/lamina.js', 'up', '--port', '0', '--data-dir', dataDir,
    ...(opts.sandbox ? ['--sandbox', opts.sandbox] : []),
    ...(opts.poolSize !== undefined ? ['--pool-size', String(opts.poolSize)] : []),
  ];
  const name = `lamina${opts.sandbox ? ` --sandbox ${opts.sandbox}` : ''}`;
  let started;
  try {
    started = await launch(name, args, /Lamina listening on (\S+)/, serverEnv(opts.env), opts.root);
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const { child, url, stdout } = started;
  for (let i = 0; i < 40 && !/admin token:/.test(stdout()); i++) await sleep(25); // the lines after the URL
  const token = readFileSync(path.join(dataDir, 'token'), 'utf8').trim();
  const tier = /sandbox tier:\s+(\S+)/.exec(stdout())?.[1] ?? 'unknown';
  const auth = { authorization: `Bearer ${token}` };
  const upload = async (fname: string, archive: Buffer): Promise<number> => {
    const res = await fetch(`${url}/api/v1/functions/${fname}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/gzip' }, body: new Uint8Array(archive) });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`deploy ${fname}: HTTP ${res.status} ${text.slice(0, 300)}`);
    return (JSON.parse(text) as { version: number }).version;
  };
  return {
    name,
    url,
    pid: child.pid!,
    token,
    tier,
    dataDir,
    async deploy(fname, dir, manifest) {
      return upload(fname, await packFunction(dir, manifest));
    },
    upload,
    async remove(fname) {
      const res = await fetch(`${url}/api/v1/functions/${fname}`, { method: 'DELETE', headers: auth });
      await res.text();
      if (!res.ok) throw new Error(`delete ${fname}: HTTP ${res.status}`);
    },
    async stop() {
      await stopChild(name, child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A plain Node baseline server (bench/servers/baseline.mjs): `bare` or `serial`, echoing or running `fn`. */
export async function startBaseline(mode: 'bare' | 'serial', fn?: string): Promise<Proc> {
  const name = `${mode} node server${fn ? ` (${path.basename(path.dirname(fn))})` : ''}`;
  const args = ['bench/servers/baseline.mjs', '--mode', mode, ...(fn ? ['--fn', fn] : [])];
  const { child, url } = await launch(name, args, /listening on (\S+)/, serverEnv());
  return { name, url, pid: child.pid!, stop: () => stopChild(name, child) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
