// Test harness: real `lamina up` processes, real HTTP, function directories made on the fly.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { packDirectory } from '../../src/registry/archive.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'bin', 'lamina.js');

/** Sandbox tiers the functional suites run on (LAMINA_TEST_TIERS narrows it); every tier by default, so a tier this machine cannot run fails loudly. */
export function testTiers(): string[] {
  return (process.env.LAMINA_TEST_TIERS ?? 'process,container,isolate').split(',').map((s) => s.trim()).filter(Boolean);
}

export interface TestServer {
  url: string;
  token: string;
  dataDir: string;
  proc: ChildProcess;
  output: () => string;
  /** PIDs of the server's direct children (its sandboxes' processes). */
  childPids(): number[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  args?: string[];
  env?: Record<string, string>;
  dataDir?: string;
  tier?: string;
}

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'lamina-test-'));
  const args = [CLI, 'up', '--port', '0', '--data-dir', dataDir, ...(opts.tier ? ['--sandbox', opts.tier] : []), ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, { env: { ...process.env, LAMINA_TOKEN: '', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s:\n${out}`)), 60_000);
    const check = () => {
      const m = /Lamina listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
  const token = opts.env?.LAMINA_TOKEN || readFileSync(path.join(dataDir, 'token'), 'utf8').trim();
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    url,
    token,
    dataDir,
    proc,
    output: () => out,
    childPids: () => childrenOf(proc.pid!),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const code = await exited;
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

/** PIDs whose parent is `pid`, read from /proc. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      // The server's reaper (src/sandbox/leftovers.ts) is no sandbox: it outlives the server on purpose, to clear up after it.
      if (ppid === pid && !readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('lamina-reaper')) out.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** Writes a function directory: files by relative path, plus lamina.json when a manifest is given. */
export function makeFunction(files: Record<string, string>, manifest?: Record<string, unknown>, name?: string): string {
  const base = mkdtempSync(path.join(os.tmpdir(), 'lamina-fn-'));
  const dir = path.join(base, name ?? (manifest?.name as string | undefined) ?? 'fn');
  mkdirSync(dir, { recursive: true });
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text);
  }
  if (manifest) writeFileSync(path.join(dir, 'lamina.json'), JSON.stringify(manifest));
  return dir;
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export async function call(url: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, body, text };
}

export function invoke(s: TestServer, name: string, event?: unknown, init: RequestInit = {}): Promise<Reply> {
  return call(`${s.url}/run/${name}`, { method: 'POST', body: event === undefined ? undefined : JSON.stringify(event), headers: { 'content-type': 'application/json' }, ...init });
}

export function admin(s: TestServer, method: string, route: string, body?: BodyInit, contentType?: string): Promise<Reply> {
  const headers: Record<string, string> = { authorization: `Bearer ${s.token}` };
  if (contentType) headers['content-type'] = contentType;
  return call(`${s.url}/api/v1${route}`, { method, headers, body });
}

/** Deploys a directory through the admin API; throws with the server's message unless 201. */
export async function deploy(s: TestServer, dir: string, name = path.basename(dir)): Promise<{ name: string; version: number; codeHash: string }> {
  const r = await deployRaw(s, dir, name);
  if (r.status !== 201) throw new Error(`deploy of ${name} failed: ${r.status} ${r.text}`);
  return r.body;
}

export async function deployRaw(s: TestServer, dir: string, name = path.basename(dir)): Promise<Reply> {
  const tgz = await packDirectory(dir);
  return admin(s, 'PUT', `/functions/${name}`, tgz as unknown as BodyInit, 'application/gzip');
}

/** Deploys a one-file function (index.mjs) with a manifest. */
export async function deployCode(s: TestServer, name: string, code: string, manifest: Record<string, unknown> = {}): Promise<void> {
  const dir = makeFunction({ 'index.mjs': code }, { name, ...manifest }, name);
  try {
    await deploy(s, dir, name);
  } finally {
    rmSync(path.dirname(dir), { recursive: true, force: true });
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
