// The soak's mix of functions (issue 16), shared by the single-node part
// (`soak`) and the cluster part (`soak-cluster`): what each function does, what
// it answers by design, how many loops call it, one call as a Sample, and what
// a Lamina process left on the host.
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Fn {
  name: string;
  code: string;
  manifest: Record<string, unknown>;
  /** Statuses this function answers by design (besides chaos). */
  expected: number[];
  /** Loops calling it at once. */
  loops: number;
  body: string;
}

export const FNS: Fn[] = [
  { name: 'fast', code: 'export async function handler(e) { return { echo: e }; }', manifest: { timeoutMs: 5000, concurrency: 8 }, expected: [200], loops: 32, body: '{"hello":"world","n":[1,2,3]}' },
  { name: 'fails', code: 'export async function handler() { throw new Error("by design"); }', manifest: { timeoutMs: 5000 }, expected: [500], loops: 2, body: '{}' },
  { name: 'slow', code: 'export async function handler() { await new Promise((r) => setTimeout(r, 1500)); return "late"; }', manifest: { timeoutMs: 2000, concurrency: 8 }, expected: [200], loops: 4, body: '{}' },
  // 60 MB held for the call and dropped after. Measured on the container tier: the sandbox's
  // cgroup charges 68 MB while the buffer lives (the Node binary's pages are charged to whoever
  // read them first), but the buffer is freed only by V8's next GC, which a starved machine runs
  // after the next call's allocation: two buffers (128 MB) reach a 128 MB cap and the kernel
  // kills the sandbox. So the cap is 160 MB: one call's peak is 43% of it, two buffers 80%.
  { name: 'heavy', code: 'export async function handler() { const b = Buffer.alloc(60 * 1024 * 1024, 1); return b[123]; }', manifest: { memoryMb: 160, timeoutMs: 5000, concurrency: 2 }, expected: [200], loops: 1, body: '{}' },
  // Deleted and re-created every 10 s: 404 while it is gone is by design.
  { name: 'ephemeral', code: 'export async function handler() { return "here"; }', manifest: { timeoutMs: 5000 }, expected: [200, 404], loops: 2, body: '{}' },
];

export interface Sample {
  fn: string;
  at: number;
  ms: number;
  status: number;
  type: string;
  message: string;
  /** From the answer's headers: a cold start, the run time in the sandbox (ms), the instance. */
  cold?: boolean;
  runMs?: number;
  instance?: string;
  /** The worker that answered (cluster mode), or that died under the call (WorkerCrashed). */
  worker?: string;
}

/** A chaos kill: when, and the function whose sandbox it was ('' for a pooled sandbox with no code yet). */
export interface Kill {
  at: number;
  fn: string;
}

/** The function's code with a marker naming it, which survives bundling (see functionOf). */
export function withMarker(f: Fn): string {
  return `${f.code}\nexport const soakMarker = "soak-fn:${f.name}";\n`;
}

/** The function whose code sandbox runtime `pid` holds ('' if none: a pooled sandbox not yet loaded). */
export function functionOf(pid: number): string {
  // Container tier: the code is mounted at /var/task (read through the sandbox's own root);
  // process tier: the runtime's cwd is the code dir.
  for (const file of [`/proc/${pid}/root/var/task/index.mjs`, `/proc/${pid}/cwd/index.mjs`]) {
    try {
      const m = /"soak-fn:(\w+)"/.exec(readFileSync(file, 'utf8'));
      if (m) return m[1]!;
    } catch {
      /* not this tier's layout, or no code yet */
    }
  }
  return '';
}

/**
 * How long the client waits past a call's timeout: a call may first wait for a sandbox start,
 * which the server bounds at 15 s (READY_TIMEOUT_MS in src/sandbox/child-runtime.ts), then run
 * for its timeout; 5 s more for the answer's way back on a loaded machine.
 */
export const GIVE_UP_MS = 20_000;

/**
 * Hung: no answer within the bounds the server promises (see GIVE_UP_MS), or a run in the
 * sandbox (x-lamina-duration-ms) that outlived its timeout by more than 1 s. Late: answered
 * after the timeout + 1 s although its run kept to the timeout; the call waited for a sandbox
 * start or in the function's queue (printed, not a failure).
 */
export function classifyTimes(samples: Sample[]): { hung: Sample[]; late: Sample[] } {
  const timeoutOf = (s: Sample) => Number(FNS.find((f) => f.name === s.fn)!.manifest.timeoutMs);
  const hung = samples.filter((s) => s.status === 0 || (s.runMs !== undefined && s.runMs > timeoutOf(s) + 1000));
  const late = samples.filter((s) => !hung.includes(s) && s.ms > timeoutOf(s) + 1000);
  return { hung, late };
}

/** One call of `f` through `url` (/run/NAME); the client gives up `giveUpMs` after the call's timeout. */
export async function callOnce(url: string, f: Fn, t0: number, giveUpMs = 5000): Promise<Sample> {
  const started = performance.now();
  const at = started - t0;
  try {
    const res = await fetch(`${url}/run/${f.name}`, { method: 'POST', body: f.body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(Number(f.manifest.timeoutMs) + giveUpMs) });
    const text = await res.text();
    let type = '';
    let message = '';
    if (res.status !== 200) {
      try {
        const e = (JSON.parse(text) as { error: { type: string; message: string } }).error;
        type = e.type;
        message = e.message;
      } catch {
        type = 'unparsed';
        message = text.slice(0, 200);
      }
    }
    const runMs = Number(res.headers.get('x-lamina-duration-ms') ?? NaN);
    return { fn: f.name, at, ms: performance.now() - started, status: res.status, type, message, cold: res.headers.get('x-lamina-cold-start') === '1', runMs, instance: res.headers.get('x-lamina-instance') ?? undefined, worker: res.headers.get('x-lamina-worker') ?? undefined };
  } catch (err) {
    return { fn: f.name, at, ms: performance.now() - started, status: 0, type: 'NoAnswer', message: (err as Error).message };
  }
}

export /** Cgroup dirs, run dirs and processes of Lamina process `pid` still on the host. */
function leftovers(pid: number): { processes: number; cgroups: number; runDirs: number } {
  let cgroups = 0;
  for (const base of ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/freezer', '/sys/fs/cgroup/pids', '/sys/fs/cgroup']) {
    const walk = (d: string, depth: number): void => {
      let entries: import('node:fs').Dirent[] = [];
      try {
        entries = readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        if (e.name.startsWith(`lamina-${pid}-`)) cgroups++;
        else if (depth < 3 && !e.name.startsWith('lamina-')) walk(path.join(d, e.name), depth + 1);
      }
    };
    walk(base, 0);
  }
  const runDirs = readdirSync(os.tmpdir()).filter((n) => n.startsWith(`lamina-run-${pid}-`)).length;
  let processes = 0;
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cgroup`, 'utf8').includes(`/lamina-${pid}-`)) processes++;
    } catch {
      /* exited */
    }
  }
  return { processes, cgroups, runDirs };
}

