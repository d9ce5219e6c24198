// Micro-benchmark of the Node runtime's per-call work in each HTTP shape (issue 10):
// the real runtime, bundled from its sources as the build does, in its own process,
// driven over fd 3 as the worker drives it (one call at a time, or one every --gap ms,
// as a runtime behind ic=1 sees calls when 32 connections share 32 of them). CPU per
// call is the runtime's own (every thread, /proc/PID/task/*/schedstat, in ns), so the
// ratios hold on a busy machine where wall-clock time does not. JSON, request and fetch
// functions (bench/functions/noop*), and each given runtime, in alternating rounds. Each
// runtime gets the invoke frames its own checkout's worker would send (its prepareCall), so
// a base checkout can be measured beside this one across a change of the frame; the main
// (JavaScript) thread's share is shown apart from V8's helper threads.
//
//   node --import tsx bench/micro/runtime-call.ts [--runtime name=src/runtime/node/runtime.ts ...]
//        [--calls 4000] [--rounds 5] [--gap 0] [--prof DIR] [--flags name=--v8-flag,--other ...]
import { spawn, type ChildProcess } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { pathToFileURL } from 'node:url';
import type { HttpCall } from '../../src/http/call.js';
import type { prepareCall } from '../../src/http/prepare.js';
import { FUNCTIONS, ROOT, sleep } from '../lib/server.js';
import { median } from '../lib/stats.js';
import { table } from '../lib/table.js';

const { values } = parseArgs({
  options: {
    runtime: { type: 'string', multiple: true },
    calls: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '5' },
    gap: { type: 'string', default: '0' },
    prof: { type: 'string' },
    shapes: { type: 'string', default: 'json,request,fetch' },
    // Extra node flags for one runtime, as name=--flag,--flag (V8 flags to try on runtime processes).
    flags: { type: 'string', multiple: true },
  },
});
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);
const GAP_MS = Number(values.gap);
const BODY = '{"hello":"world"}';

const SHAPES = {
  json: { dir: 'noop', mode: undefined },
  request: { dir: 'noop-request', mode: 'request' },
  fetch: { dir: 'noop-fetch', mode: 'fetch' },
} as const;
type Shape = keyof typeof SHAPES;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'lamina-micro-runtime-'));

/** Bundles a runtime's sources as scripts/build.mjs does (one self-contained file). */
async function bundle(name: string, entry: string): Promise<string> {
  const out = path.join(tmp, `${name}.mjs`);
  await build({ entryPoints: [path.resolve(ROOT, entry)], bundle: true, platform: 'node', target: 'node20', format: 'esm', outfile: out, logLevel: 'warning' });
  return out;
}

/** The CPU time (ns) of every thread of pid so far (or of its main thread alone). */
function cpuNs(pid: number, mainOnly = false): number {
  let ns = 0;
  for (const t of mainOnly ? [String(pid)] : readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns;
}

interface Runner {
  label: string;
  child: ChildProcess;
  call(): Promise<void>;
  stop(): void;
}

type Prepare = typeof prepareCall;

/** The worker's prepareCall of the checkout a runtime comes from: each runtime gets what its own server would send. */
async function prepareOf(runtimeEntry: string): Promise<Prepare> {
  const root = path.resolve(ROOT, runtimeEntry, '../../../..');
  return ((await import(pathToFileURL(path.join(root, 'src/http/prepare.ts')).href)) as { prepareCall: Prepare }).prepareCall;
}

/** What the worker would send for one wrk call (src/http/prepare.ts builds it). */
function invokeFrame(prepare: Prepare, shape: Shape, fn: string, n: number): string {
  const id = `r-${n}`;
  const context = { requestId: id, functionName: fn, functionVersion: 1, memoryLimitMb: 128, deadlineMs: Date.now() + 30_000, coldStart: false };
  const mode = SHAPES[shape].mode;
  if (!mode) return JSON.stringify({ t: 'invoke', id, event: JSON.parse(BODY), context }) + '\n';
  const call: HttpCall = {
    method: 'POST',
    url: `/run/${fn}`,
    headers: [['host', '127.0.0.1:8080'], ['content-length', String(BODY.length)], ['content-type', 'application/json']],
    body: Buffer.from(BODY),
    sourceIp: '127.0.0.1',
    protocol: 'HTTP/1.1',
  };
  const manifest = { name: fn, http: { event: mode === 'fetch' ? 'json' : mode } } as Parameters<Prepare>[0];
  const { event, http } = prepare(manifest, mode === 'fetch' ? 'fetch' : 'handler', id, undefined, call);
  return JSON.stringify({ t: 'invoke', id, event, context, http }) + '\n';
}

async function start(runtimeName: string, runtimeFile: string, prepare: Prepare, shape: Shape): Promise<Runner> {
  const fn = SHAPES[shape].dir;
  const extra = (values.flags ?? []).filter((f) => f.startsWith(`${runtimeName}=`)).flatMap((f) => f.slice(runtimeName.length + 1).split(','));
  const args = [...(values.prof ? ['--cpu-prof', `--cpu-prof-dir=${values.prof}`, `--cpu-prof-name=${runtimeName}-${shape}.cpuprofile`] : []), '--max-old-space-size=128', ...extra, runtimeFile];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit', 'pipe'], env: {} });
  const channel = child.stdio[3] as Duplex;
  let buf = '';
  let waiting: ((frame: Record<string, unknown>) => void) | undefined;
  const frames: Record<string, unknown>[] = [];
  channel.setEncoding('utf8');
  channel.on('data', (chunk: string) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const f = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      if (waiting) {
        const w = waiting;
        waiting = undefined;
        w(f);
      } else frames.push(f);
    }
  });
  const next = (): Promise<Record<string, unknown>> => (frames.length ? Promise.resolve(frames.shift()!) : new Promise((r) => (waiting = r)));
  const ready = await next();
  if (ready.t !== 'ready') throw new Error(`runtime ${runtimeName}: first frame ${JSON.stringify(ready)}`);
  channel.write(JSON.stringify({ t: 'load', entry: path.join(FUNCTIONS, fn, 'index.mjs'), handler: 'handler', env: {}, function: { name: fn, version: 1, memoryMb: 128, timeoutMs: 30_000 } }) + '\n');
  const loaded = await next();
  if (loaded.t !== 'loaded') throw new Error(`runtime ${runtimeName}, ${fn}: ${JSON.stringify(loaded)}`);
  let n = 0;
  return {
    label: `${runtimeName} ${shape}`,
    child,
    async call() {
      channel.write(invokeFrame(prepare, shape, fn, n++));
      const r = await next();
      if (r.t !== 'result' || r.ok !== true) throw new Error(`runtime ${runtimeName}, ${fn}: ${JSON.stringify(r)}`);
      const v = r.value as { body?: string } | undefined;
      // Every shape echoes the body: a runtime that answers wrong is not measured.
      const echoed = shape === 'json' ? JSON.stringify(r.value) : v?.body;
      if (echoed !== BODY) throw new Error(`runtime ${runtimeName}, ${fn}: answered ${JSON.stringify(r.value)}`);
    },
    stop() {
      child.stdio[3]?.destroy();
    },
  };
}

/** us of runtime CPU per call over `CALLS` calls: every thread, and the main (JavaScript) thread alone. */
async function measure(r: Runner): Promise<[number, number]> {
  const before = cpuNs(r.child.pid!);
  const beforeMain = cpuNs(r.child.pid!, true);
  for (let i = 0; i < CALLS; i++) {
    await r.call();
    if (GAP_MS > 0) await sleep(GAP_MS);
  }
  return [(cpuNs(r.child.pid!) - before) / 1000 / CALLS, (cpuNs(r.child.pid!, true) - beforeMain) / 1000 / CALLS];
}

const runtimes = (values.runtime ?? ['current=src/runtime/node/runtime.ts']).map((s) => {
  const eq = s.indexOf('=');
  return eq === -1 ? { name: path.basename(s), entry: s } : { name: s.slice(0, eq), entry: s.slice(eq + 1) };
});
const shapes = values.shapes.split(',') as Shape[];
const runners: Runner[] = [];
try {
  for (const rt of runtimes) {
    const file = await bundle(rt.name, rt.entry);
    const prepare = await prepareOf(rt.entry);
    for (const s of shapes) runners.push(await start(rt.name, file, prepare, s));
  }
  // Warm-up: V8 optimizes each runtime's hot path before anything counts.
  for (const r of runners) for (let i = 0; i < Math.min(CALLS, 2000); i++) await r.call();
  const runs = new Map<string, number[]>(runners.map((r) => [r.label, []]));
  const mains = new Map<string, number[]>(runners.map((r) => [r.label, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const r of round % 2 ? [...runners].reverse() : runners) {
      const [all, main] = await measure(r);
      runs.get(r.label)!.push(all);
      mains.get(r.label)!.push(main);
    }
  }
  console.log(`runtime per-call micro-benchmark, ${new Date().toISOString()}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, Node ${process.version}`);
  console.log(`${CALLS} calls x ${ROUNDS} rounds per row, ${GAP_MS > 0 ? `one call every ${GAP_MS} ms` : 'back to back'}, body ${BODY}`);
  const rows = runners.map((r) => {
    const us = median(runs.get(r.label)!);
    const json = median(runs.get(`${r.label.split(' ')[0]} json`) ?? [NaN]);
    return [r.label, us, us / json, median(mains.get(r.label)!)];
  });
  console.log(table(['runtime shape', 'runtime us CPU/call (median)', 'vs JSON', 'main thread us/call'], rows as (string | number)[][]));
} finally {
  for (const r of runners) r.stop();
  await sleep(values.prof ? 500 : 0);
  if (values.prof) console.log(`profiles in ${values.prof}`);
  rmSync(tmp, { recursive: true, force: true });
}
