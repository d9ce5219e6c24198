// Lamina's benchmark suite (docs/benchmarks.md).
//   npm run bench                       every part, full mode (~20 min)
//   npm run bench -- --short            smoke mode for CI (BENCH_SHORT=1 too; ~2.5 min): seconds per part,
//                                       checks only that every part ran and produced numbers
//   npm run bench -- warm cold          chosen parts (warm, cold, elasticity, packages, python, routing, soak, soak-cluster, async, live, aws, density)
//   npm run bench -- density            isolate functions warm per node and first-call speed (issue 15)
//   npm run bench -- soak               the soak and chaos run (10 min; 1 min with --short; --duration S)
//   npm run bench -- soak-cluster       the same through a gateway and 3 workers, killing workers and restarting PostgreSQL (10 min; 45 s with --short)
// Options: --tiers process,container,isolate (elasticity also takes TIER/ungated: the scale-out gate off)  --duration S (elasticity)  --profile (warm)  --out DIR
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { async } from './parts/async.js';
import { aws } from './parts/aws.js';
import { cold } from './parts/cold.js';
import { density } from './parts/density.js';
import { elasticity } from './parts/elasticity.js';
import { live } from './parts/live.js';
import { packages } from './parts/packages.js';
import { python } from './parts/python.js';
import { routing } from './parts/routing.js';
import { soak } from './parts/soak.js';
import { soakCluster } from './parts/soak-cluster.js';
import { warm } from './parts/warm.js';
import type { BenchOptions, Check, Part, PartResult } from './lib/part.js';
import { ROOT } from './lib/server.js';

const PARTS: Record<string, Part> = { warm, cold, elasticity, packages, python, routing, soak, 'soak-cluster': soakCluster, async, live, aws, density };

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    short: { type: 'boolean', default: false },
    tiers: { type: 'string', default: 'process,container,isolate' },
    duration: { type: 'string' },
    profile: { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (a.help) {
  console.log(`usage: npm run bench -- [--short] [--tiers LIST] [--duration S] [--profile] [--out DIR] ${Object.keys(PARTS).map((p) => `[${p}]`).join(' ')}`);
  process.exit(0);
}
const unknown = positionals.filter((p) => !(p in PARTS));
if (unknown.length) {
  console.error(`bench: unknown part(s) ${unknown.join(', ')}; parts are ${Object.keys(PARTS).join(', ')}`);
  process.exit(2);
}

const short = a.short || !!process.env.BENCH_SHORT;
const outDir = a.out ?? mkdtempSync(path.join(os.tmpdir(), `lamina-bench-${new Date().toISOString().slice(0, 10)}-`));
mkdirSync(outDir, { recursive: true });
const opts: BenchOptions = {
  short,
  outDir,
  plotDir: short ? undefined : path.join(ROOT, 'docs'),
  tiers: a.tiers!.split(',').map((t) => t.trim()).filter(Boolean),
  durationS: a.duration ? Number(a.duration) : undefined,
  profile: a.profile!,
};

const machine = {
  date: new Date().toISOString(),
  cores: os.availableParallelism(),
  cpu: os.cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  kernel: os.release(),
  loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
};
console.log(`Lamina benchmarks (${short ? 'short' : 'full'} mode) on ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}; load average ${machine.loadavg.join(' ')}`);

const chosen = positionals.length ? positionals : Object.keys(PARTS);
const results: Record<string, PartResult | { error: string }> = {};
let failed = 0;
for (const name of chosen) {
  console.log(`\n== ${name}`);
  const t0 = performance.now();
  try {
    const r = await PARTS[name]!(opts);
    for (const n of r.notes) console.log(`  note: ${n}`);
    const numbers = r.rows.flatMap((row) => Object.values(row)).filter((v) => typeof v === 'number' && Number.isFinite(v));
    if (r.rows.length === 0 || numbers.length === 0) throw new Error('the part produced no numbers');
    results[name] = r;
    console.log(`  (${name}: ${r.rows.length} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (err) {
    failed++;
    results[name] = { error: (err as Error).stack ?? String(err) };
    console.error(`  FAILED: ${(err as Error).stack ?? err}`);
  }
}

const checks = Object.values(results).flatMap((r) => ('checks' in r ? r.checks : [])) as Check[];
if (checks.length) {
  console.log('\n== aims' + (short ? ' (short mode: informational only)' : ''));
  for (const c of checks) console.log(`  ${c.met ? 'met   ' : 'MISSED'}  ${c.aim}: ${c.measured}`);
}
writeFileSync(path.join(outDir, 'results.json'), JSON.stringify({ mode: short ? 'short' : 'full', machine, results }, null, 2));
console.log(`\nresults: ${path.join(outDir, 'results.json')}`);
// The plain closing line CI reads: one "test" per part that ran and produced numbers.
console.log(`bench: ${chosen.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
