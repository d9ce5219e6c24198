// Benchmark for package-aware deploys (docs/benchmarks.md, "Packages"):
// cold start of a function importing a 50-module dependency tree
//   - cache:    dependencies external, imported from the shared package cache
//   - preload:  the same, with a pre-started runtime that already imported them (LAMINA_PRELOAD)
//   - bundled:  everything bundled into the function (one index.mjs, no package.json)
// and the deploy time of further functions with the same dependencies (cache hits).
//   node --import tsx bench/packages.ts [--tiers process,container] [--n 30] [--gap-ms 1000] [--short] [--out FILE]
// Variants are interleaved call by call (cache, bundled, preload, cache, ...), so load from
// anything else on the machine hits them alike.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import { admin, deploy, invoke, startServer, type TestServer } from '../test/helpers/server.js';
import { functionWithPackages, moduleTree, packFixtures } from '../test/packages/fixtures.js';

const { values: a } = parseArgs({
  options: {
    tiers: { type: 'string', default: 'process,container' },
    n: { type: 'string' },
    'gap-ms': { type: 'string' },
    short: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const short = a.short || !!process.env.BENCH_SHORT;
const N = Number(a.n ?? (short ? 3 : 30));
const GAP = Number(a['gap-ms'] ?? (short ? 300 : 1000));
const tiers = a.tiers!.split(',').map((t) => t.trim()).filter(Boolean);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]! : NaN;
};
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');

// Fixtures: the tree packed once; the package-aware function (with lockfile); the bundled one.
const TREE = moduleTree(50, 'tree');
const HANDLER = "import t from 'tree0';\nexport async function handler() { return { sum: t.sum() }; }\n";
const vendorDir = mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-vendor-'));
const vendor = { dir: vendorDir, files: packFixtures(TREE, vendorDir) };
const pkgFn = functionWithPackages({ name: 'tree-fn', files: { 'index.mjs': HANDLER }, packages: TREE, vendorFrom: vendor });
const bundledDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-bundled-')), 'bundled-fn');
{
  // Install once with npm (offline, from the tarballs) and bundle it all with esbuild, as a user would.
  const work = mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-npm-'));
  cpSync(pkgFn.dir, work, { recursive: true });
  execFileSync('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: work, stdio: 'ignore' });
  mkdirSync(bundledDir, { recursive: true });
  await esbuild.build({ entryPoints: [path.join(work, 'index.mjs')], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: path.join(bundledDir, 'index.mjs'), logLevel: 'error', banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" } });
  rmSync(work, { recursive: true, force: true });
}
const withName = (dir: string, name: string) => {
  const d = path.join(mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-fn-')), name);
  cpSync(dir, d, { recursive: true });
  return d;
};

interface Sample {
  latencyMs: number;
  initMs: number;
  deployMs: number;
  cold: boolean;
}

async function coldStart(s: TestServer, dir: string, name: string): Promise<Sample | undefined> {
  const d = withName(dir, name);
  try {
    const t0 = performance.now();
    await deploy(s, d, name);
    const deployMs = performance.now() - t0;
    await sleep(GAP); // pools refill (and preload) between deploy and first call, as they would in life
    const t1 = performance.now();
    const r = await invoke(s, name, {});
    const latencyMs = performance.now() - t1;
    if (r.status !== 200 || r.body?.sum !== 1225) throw new Error(`${name}: ${r.status} ${r.text.slice(0, 300)}`);
    const rec = await admin(s, 'GET', `/invocations/${r.headers.get('x-lamina-request-id')}`);
    await admin(s, 'DELETE', `/functions/${name}`);
    return { latencyMs, initMs: rec.body?.initMs ?? NaN, deployMs, cold: r.headers.get('x-lamina-cold-start') === '1' };
  } finally {
    rmSync(path.dirname(d), { recursive: true, force: true });
  }
}

const rows: Record<string, unknown>[] = [];
const deployRows: Record<string, unknown>[] = [];
for (const tier of tiers) {
  const plain = await startServer({ tier, env: { LAMINA_PRELOAD: '0' } });
  const pre = await startServer({ tier, env: { LAMINA_PRELOAD: '1' } });
  try {
    // First deploy of the dependency set on each server: a real install.
    const first: number[] = [];
    for (const s of [plain, pre]) {
      const t0 = performance.now();
      await deploy(s, withName(pkgFn.dir, 'first'), 'first');
      first.push(performance.now() - t0);
      await admin(s, 'DELETE', '/functions/first');
    }
    const entry = (await admin(plain, 'GET', '/packages')).body.entries[0];
    const samples: Record<string, Sample[]> = { cache: [], preload: [], bundled: [] };
    await sleep(1000);
    for (let i = 0; i < N; i++) {
      const c = await coldStart(plain, pkgFn.dir, `c${i}`);
      const b = await coldStart(plain, bundledDir, `b${i}`);
      const p = await coldStart(pre, pkgFn.dir, `p${i}`);
      for (const [k, v] of [['cache', c], ['bundled', b], ['preload', p]] as const) if (v?.cold) samples[k]!.push(v);
    }
    for (const [variant, xs] of Object.entries(samples)) {
      rows.push({
        tier,
        variant,
        n: xs.length,
        coldP50: pct(xs.map((x) => x.latencyMs), 0.5),
        coldP90: pct(xs.map((x) => x.latencyMs), 0.9),
        initP50: pct(xs.map((x) => x.initMs), 0.5),
        initP90: pct(xs.map((x) => x.initMs), 0.9),
        deployP50: pct(xs.map((x) => x.deployMs), 0.5),
      });
    }
    // Same dependencies, "sandbox" pinned to the tier: no best-effort isolate build (what "auto" adds).
    const pinned: number[] = [];
    const pinnedDir = withName(pkgFn.dir, 'pinned');
    writeFileSync(path.join(pinnedDir, 'lamina.json'), JSON.stringify({ sandbox: tier }));
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      await deploy(plain, pinnedDir, 'pinned');
      pinned.push(performance.now() - t0);
    }
    rmSync(path.dirname(pinnedDir), { recursive: true, force: true });
    deployRows.push({ tier, firstDeployMs: Math.round(Math.min(...first)), installMs: entry?.installMs, sameDepsDeployP50: pct(samples.cache!.map((x) => x.deployMs), 0.5), pinnedDeployP50: pct(pinned, 0.5), bundledDeployP50: pct(samples.bundled!.map((x) => x.deployMs), 0.5) });
  } finally {
    await plain.stop();
    await pre.stop();
  }
}

const load = os.loadavg().map((x) => x.toFixed(1)).join(' ');
console.log(`\nCold start, 50-module dependency tree (${N} per variant, interleaved; load average ${load}; ${os.cpus().length} cores)\n`);
console.log('| tier | variant | n | cold p50 ms | cold p90 ms | init p50 ms | init p90 ms |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.tier} | ${r.variant} | ${r.n} | ${f1(r.coldP50 as number)} | ${f1(r.coldP90 as number)} | ${f1(r.initP50 as number)} | ${f1(r.initP90 as number)} |`);
console.log('\nDeploys\n');
console.log('| tier | first deploy (install) ms | npm install ms | same deps, next deploy p50 ms ("auto") | same deps, sandbox pinned p50 ms | bundled deploy p50 ms |');
console.log('|---|---|---|---|---|---|');
for (const r of deployRows) console.log(`| ${r.tier} | ${r.firstDeployMs} | ${r.installMs} | ${f1(r.sameDepsDeployP50 as number)} | ${f1(r.pinnedDeployP50 as number)} | ${f1(r.bundledDeployP50 as number)} |`);
if (a.out) writeFileSync(a.out, JSON.stringify({ n: N, gapMs: GAP, load, rows, deployRows }, null, 2));
pkgFn.remove();
rmSync(vendorDir, { recursive: true, force: true });
rmSync(path.dirname(bundledDir), { recursive: true, force: true });
