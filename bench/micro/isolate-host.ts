// Micro-benchmark of the isolate host's per-call work (issue 15): the real host
// program and prelude, bundled from a checkout's sources as build.ts does, in
// their own process, driven over fd 3 the way the server drives them: one
// isolate of the no-op echo, `--outstanding` calls kept in flight (32: ic=64 at
// 32 connections), each new call sent as soon as one is answered, every frame
// sent in one turn leaving in one write (as LineChannel corks). CPU per call is
// the host's own (every thread, /proc/PID/task/*/schedstat), so the ratios hold
// on a busy machine; hosts of several checkouts run in alternating rounds.
//
//   node --import tsx bench/micro/isolate-host.ts [--host name=/path/to/checkout ...]
//        [--calls 20000] [--rounds 5] [--outstanding 32] [--prof DIR]
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { ROOT } from '../lib/server.js';
import { median } from '../lib/stats.js';
import { table } from '../lib/table.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', multiple: true },
    calls: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '5' },
    outstanding: { type: 'string', default: '32' },
    prof: { type: 'string' },
  },
});
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);
const OUTSTANDING = Number(values.outstanding);
const CODE = 'var __laminaUser = { default: async (event) => event };';
const EVENT = '{"hello":"world"}';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lamina-micro-host-'));

/** The host's files from one checkout's sources (as src/sandbox/isolate/build.ts makes them). */
async function hostFiles(name: string, root: string): Promise<string> {
  const dir = path.join(tmp, name);
  mkdirSync(dir);
  const src = path.join(root, 'src', 'sandbox', 'isolate');
  await build({ entryPoints: [path.join(src, 'host.ts')], bundle: true, platform: 'node', target: 'node20', format: 'esm', outfile: path.join(dir, 'host.mjs'), logLevel: 'warning' });
  const prelude = await build({ entryPoints: [path.join(src, 'prelude', 'index.ts')], bundle: true, platform: 'neutral', target: 'es2022', format: 'iife', minifyWhitespace: true, minifySyntax: true, write: false, logLevel: 'warning' });
  writeFileSync(path.join(dir, 'prelude.js'), prelude.outputFiles[0]!.contents);
  const pkg = createRequire(import.meta.url).resolve('isolated-vm/package.json');
  copyFileSync(path.join(path.dirname(pkg), 'out', 'isolated_vm.node'), path.join(dir, 'isolated_vm.node'));
  return path.join(dir, 'host.mjs');
}

/** CPU time (ns) of every thread of pid so far. */
function cpuNs(pid: number): number {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* thread gone */
    }
  }
  return ns;
}

interface Host {
  name: string;
  child: ChildProcess;
  /** Runs `n` calls with OUTSTANDING in flight; resolves with the host's CPU us per call. */
  run(n: number): Promise<number>;
}

async function startHost(name: string, program: string): Promise<Host> {
  const args = ['--no-node-snapshot', ...(values.prof ? ['--cpu-prof', `--cpu-prof-dir=${values.prof}`, `--cpu-prof-name=${name}.cpuprofile`] : []), program, 'nonet'];
  const child = spawn(process.execPath, args, { env: {}, stdio: ['ignore', 'inherit', 'inherit', 'pipe'] });
  const sock = child.stdio[3] as Duplex;
  let onLine: (f: Record<string, unknown>) => void = () => undefined;
  let buf = '';
  sock.on('data', (b: Buffer) => {
    buf += b.toString('utf8');
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line) onLine(JSON.parse(line) as Record<string, unknown>);
    }
  });
  let corked = false;
  const send = (f: unknown) => {
    if (!corked) {
      corked = true;
      sock.cork();
      setImmediate(() => ((corked = false), sock.uncork()));
    }
    sock.write(JSON.stringify(f) + '\n');
  };
  const next = (pred: (f: Record<string, unknown>) => boolean) => new Promise<Record<string, unknown>>((resolve) => (onLine = (f) => pred(f) && resolve(f)));
  await next((f) => f.t === 'ready');
  let q = 0;
  const loaded = next((f) => f.q === 1);
  send({ t: 'load', q: ++q, iso: 'a', memoryMb: 128, timeoutMs: 30000, network: false, code: CODE, filename: 'noop/isolate.js', fn: { name: 'noop', version: 1, env: {} } });
  const r = await loaded;
  if (r.t !== 'ok') throw new Error(`${name}: load failed: ${JSON.stringify(r)}`);
  const invoke = () => {
    const id = `call-${q}`;
    send({ t: 'invoke', q: ++q, iso: 'a', id, event: EVENT, context: { requestId: id, functionName: 'noop', functionVersion: 1, memoryLimitMb: 128, deadlineMs: Date.now() + 30000, coldStart: false } });
  };
  return {
    name,
    child,
    run(n) {
      return new Promise((resolve, reject) => {
        let sent = 0;
        let done = 0;
        const c0 = cpuNs(child.pid!);
        onLine = (f) => {
          if (f.t === 'log') return;
          if (f.t !== 'result') return reject(new Error(`${name}: ${JSON.stringify(f)}`));
          done++;
          if (sent < n) (sent++, invoke());
          if (done === n) resolve((cpuNs(child.pid!) - c0) / 1000 / n);
        };
        for (; sent < Math.min(OUTSTANDING, n); sent++) invoke();
      });
    },
  };
}

const specs = (values.host ?? [`this=${ROOT}`]).map((s) => {
  const i = s.indexOf('=');
  return { name: s.slice(0, i), root: path.resolve(s.slice(i + 1)) };
});
const hosts: Host[] = [];
try {
  for (const s of specs) hosts.push(await startHost(s.name, await hostFiles(s.name, s.root)));
  for (const h of hosts) await h.run(Math.ceil(CALLS / 5));
  const us = new Map<string, number[]>(hosts.map((h) => [h.name, []]));
  for (let r = 0; r < ROUNDS; r++) for (const h of r % 2 ? [...hosts].reverse() : hosts) us.get(h.name)!.push(await h.run(CALLS));
  const first = median(us.get(hosts[0]!.name)!);
  console.log(`isolate host, ${CALLS} calls x ${ROUNDS} rounds, ${OUTSTANDING} in flight, load average ${os.loadavg()[0]!.toFixed(2)}`);
  console.log(table(['host', 'CPU us/call (median)', 'min', 'max', `vs ${hosts[0]!.name}`], hosts.map((h) => {
    const xs = us.get(h.name)!;
    return [h.name, median(xs), Math.min(...xs), Math.max(...xs), median(xs) / first];
  })));
} finally {
  for (const h of hosts) {
    const exited = new Promise((r) => h.child.once('exit', r));
    // EOF on fd 3 ends a host (and writes its profile).
    (h.child.stdio[3] as Duplex).end();
    await exited;
  }
  rmSync(tmp, { recursive: true, force: true });
}
