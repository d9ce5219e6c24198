// Shared fixtures for the container tier's tests: a backend per test file, and
// functions written inline into temp dirs.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { ContainerBackend, type ContainerOptions } from '../../src/sandbox/container/backend.js';
import { RunDir } from '../../src/sandbox/run-dir.js';
import type { InvokeOutcome, LoadSpec, Sandbox, SandboxShape } from '../../src/sandbox/types.js';

export function hasBwrap(): boolean {
  try {
    execFileSync('bwrap', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface Harness {
  backend: ContainerBackend;
  runDir: RunDir;
  close(): Promise<void>;
}

/** A probed backend, or undefined (with the reason) where bubblewrap is not installed. A failed probe with bwrap present is a test failure. */
export async function openBackend(opts: ContainerOptions = {}): Promise<Harness | string> {
  if (!hasBwrap()) return 'bubblewrap is not installed';
  const runDir = new RunDir('lamina-ctest-');
  const backend = new ContainerBackend(runDir, () => undefined, opts);
  const probe = await backend.probe();
  if (!probe.ok) {
    await backend.close();
    runDir.remove();
    throw new Error(`container probe failed: ${probe.reason}`);
  }
  return {
    backend,
    runDir,
    close: async () => {
      await backend.close();
      runDir.remove();
    },
  };
}

const fnDirs: string[] = [];
process.on('exit', () => fnDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A function directory holding index.mjs with this source, readable by the sandbox's uid. */
export function fnDir(source: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-ctest-fn-'));
  fnDirs.push(dir);
  chmodSync(dir, 0o755);
  writeFileSync(path.join(dir, 'index.mjs'), source, { mode: 0o644 });
  return dir;
}

export function loadSpec(codeDir: string, over: Partial<LoadSpec> = {}): LoadSpec {
  return { functionName: 'f', functionVersion: 1, codeDir, entry: 'index.mjs', handler: 'handler', env: {}, memoryMb: 128, timeoutMs: 5000, network: false, ...over };
}

export interface StartOptions {
  memoryMb?: number;
  network?: boolean;
  env?: Record<string, string>;
}

/** Creates a sandbox, loads `source` into it, and destroys it when the test ends. */
export async function start(t: TestContext, h: Harness, source: string, o: StartOptions = {}): Promise<Sandbox> {
  const shape: SandboxShape = { runtime: 'node', memoryMb: o.memoryMb ?? 128, network: o.network ?? false };
  const sb = await h.backend.create(shape);
  t.after(() => sb.destroy());
  await sb.load(loadSpec(fnDir(source), { memoryMb: shape.memoryMb, network: shape.network, env: o.env ?? {} }));
  return sb;
}

let seq = 0;
export function call(sb: Sandbox, event: unknown = {}, timeoutMs = 5000): Promise<InvokeOutcome> {
  return sb.invoke({ requestId: `r${seq++}`, event, deadlineMs: Date.now() + timeoutMs, coldStart: false });
}

/** The cgroup directories of a sandbox (from its id), across every hierarchy the backend uses. */
export function cgroupDirs(h: Harness, sb: Sandbox): string[] {
  return h.backend.cgroups!.parents.map((p) => path.join(p, sb.id));
}

/** The pids in a sandbox's cgroup (host view). */
export function cgroupPids(h: Harness, sb: Sandbox): number[] {
  const dir = cgroupDirs(h, sb)[0]!;
  return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

/** Whether a process exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return false;
  } catch {
    return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A fresh sandbox answers: proves a failure did not poison the backend. */
export async function freshWorks(t: TestContext, h: Harness): Promise<boolean> {
  const sb = await start(t, h, 'export const handler = (e) => ({ pong: e.n });');
  const o = await call(sb, { n: 7 });
  await sb.destroy();
  return o.ok && (o.value as { pong: number }).pong === 7;
}
