// Part `density` (issue 15): how many isolate functions one node keeps warm, and
// how fast a new one answers its first call. Deploys N distinct isolate
// functions, calls each once (deploy not timed) and again to see it stayed warm,
// then reads the PSS of the server's whole process tree (server, isolate hosts
// and every wrapper) from /proc/<pid>/smaps_rollup against the same server idle.
// Run with the shared-host layout (LAMINA_ISOLATE_FUNCTIONS_PER_HOST default)
// and with 1 (a host per function, the layout before issue 15) as the baseline.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_FUNCTIONS_PER_HOST } from '../../src/sandbox/isolate/backend.js';
import { request } from '../lib/load.js';
import { log, type Check, type Part } from '../lib/part.js';
import { FUNCTIONS, descendants, packFunction, sleep, startLamina } from '../lib/server.js';
import { summarize } from '../lib/stats.js';
import { fmt, table } from '../lib/table.js';

/** Proportional set size of one process in bytes (0 if it is gone). */
function pss(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** PSS of a process and all its descendants, and how many of them are isolate hosts. */
function treeMemory(pid: number): { pssBytes: number; hosts: number; processes: number } {
  const kids = descendants(pid);
  let pssBytes = pss(pid);
  let hosts = 0;
  for (const k of kids) {
    pssBytes += pss(k.pid);
    if (cmdline(k.pid).includes('host.mjs')) hosts++;
  }
  return { pssBytes, hosts, processes: kids.length + 1 };
}

const MiB = 1048576;

export const density: Part = async (o) => {
  const rows: Record<string, unknown>[] = [];
  const checks: Check[] = [];
  const notes: string[] = [];
  if (!o.tiers.includes('isolate')) return { rows, checks, notes: ['isolate tier not selected (--tiers)'] };
  // A host per function costs a Node process each (~40 MB): the baseline runs fewer functions.
  // preload: an isolate of each version loaded at its deploy (LAMINA_ISOLATE_PRELOAD, the default);
  // without it a first call is a cold start (the row that measures the load itself).
  const layouts = [
    { perHost: DEFAULT_FUNCTIONS_PER_HOST, preload: true, n: o.short ? 30 : 1000 },
    { perHost: DEFAULT_FUNCTIONS_PER_HOST, preload: false, n: o.short ? 30 : 200 },
    { perHost: 1, preload: false, n: o.short ? 6 : 60 },
  ];
  const archive = await packFunction(path.join(FUNCTIONS, 'noop'), { sandbox: 'isolate' });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  for (const layout of layouts) {
    let lamina;
    try {
      lamina = await startLamina({
        sandbox: 'isolate',
        env: {
          LAMINA_ISOLATE_FUNCTIONS_PER_HOST: String(layout.perHost),
          LAMINA_ISOLATE_PRELOAD: layout.preload ? '1' : '0',
          // Budget for N warm 128 MB instances: the caps are reservations, density is what is measured here.
          LAMINA_MEMORY_BUDGET_MB: String(Math.max(layout.n * 256, 4096)),
        },
      });
    } catch (err) {
      notes.push(`isolate tier skipped: ${(err as Error).message}`);
      break;
    }
    try {
      await sleep(o.short ? 500 : 2000);
      const idle = treeMemory(lamina.pid);
      const first: number[] = [];
      const deploy: number[] = [];
      let cold = 0;
      let errors = 0;
      const t0 = performance.now();
      for (let i = 0; i < layout.n; i++) {
        const name = `dense-${i}`;
        const d0 = performance.now();
        await lamina.upload(name, archive);
        deploy.push(performance.now() - d0);
        const r = await request(`${lamina.url}/run/${name}`, { body: `{"i":${i}}`, agent });
        if (r.status !== 200) {
          errors++;
          if (errors === 1) notes.push(`perHost ${layout.perHost}: HTTP ${r.status}: ${r.body.slice(0, 200)}`);
          continue;
        }
        first.push(r.ms);
        if (r.headers['x-lamina-cold-start'] === '1') cold++;
      }
      const fillS = (performance.now() - t0) / 1000;
      // Every function once more: still warm (no cold start) after all were deployed.
      let stillWarm = 0;
      const again: number[] = [];
      for (let i = 0; i < layout.n; i++) {
        const r = await request(`${lamina.url}/run/dense-${i}`, { body: '{}', agent });
        if (r.status === 200 && r.headers['x-lamina-cold-start'] === '0') stillWarm++;
        again.push(r.ms);
      }
      await sleep(500);
      const full = treeMemory(lamina.pid);
      const f = summarize(first);
      const row = {
        perHost: layout.perHost,
        preload: layout.preload ? 1 : 0,
        functions: layout.n,
        warm: stillWarm,
        errors,
        hosts: full.hosts,
        idleMiB: idle.pssBytes / MiB,
        fullMiB: full.pssBytes / MiB,
        perFunctionMiB: (full.pssBytes - idle.pssBytes) / MiB / layout.n,
        firstP50: f.p50,
        firstP99: f.p99,
        againP50: summarize(again).p50,
        coldConfirmed: cold,
        deployP50: summarize(deploy).p50,
        fillS,
        load1: os.loadavg()[0]!,
      };
      rows.push(row);
    } finally {
      await lamina.stop();
    }
  }
  agent.destroy();
  const shared = rows.find((r) => r.perHost !== 1 && r.preload === 1);
  if (shared && !o.short) {
    checks.push({ aim: `1000 isolate functions warm at <= 5 MB PSS each (whole process tree)`, measured: `${fmt(shared.perFunctionMiB as number, 2)} MB with ${shared.warm} warm`, met: (shared.perFunctionMiB as number) <= 5 && shared.warm === 1000 });
    checks.push({ aim: 'first call of a new isolate function < 5 ms p50 (deploy excluded)', measured: `${fmt(shared.firstP50 as number, 2)} ms`, met: (shared.firstP50 as number) < 5 });
  }
  log(
    table(
      ['functions/host', 'preload', 'functions', 'still warm', 'errors', 'hosts', 'idle PSS MiB', 'full PSS MiB', 'PSS/function MiB', 'first call p50 ms', 'p99 ms', 'second call p50 ms', 'cold confirmed', 'deploy p50 ms', 'load avg 1m'],
      rows.map((r) => [r.perHost, r.preload, r.functions, r.warm, r.errors, r.hosts, r.idleMiB, r.fullMiB, r.perFunctionMiB, r.firstP50, r.firstP99, r.againP50, r.coldConfirmed, r.deployP50, r.load1] as number[]),
    ),
  );
  log('  (PSS of the server and all its descendants from /proc/<pid>/smaps_rollup; first call = client-side latency of the first call after each deploy, deploy not included;');
  log('   second call = each function called again once all were deployed (warm); preload 1: the deploy loaded an isolate before');
  log('   answering, so "cold confirmed" counts first calls that still waited for one)');
  return { rows, checks, notes };
};
