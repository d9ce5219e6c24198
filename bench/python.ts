// Benchmark for Python functions with requirements (docs/benchmarks.md, "Python"):
// cold start of a function importing a 200-module package installed by pip
//   - cache:    the package on the import path from the shared package cache, imported at load
//   - preload:  the same, with a pre-started runtime that already imported it (LAMINA_PRELOAD; SOCK's import cache)
//   - nodeps:   the same function body without the package (the floor)
// Container tier (the only one that runs Python). Variants are interleaved call by call.
//   node --import tsx bench/python.ts [--n 20] [--gap-ms 1000] [--short] [--out FILE]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { admin, deploy, invoke, makeFunction, startServer, type TestServer } from '../test/helpers/server.js';
import { buildIndex, serveIndex } from '../test/python/pypi.js';

const { values: a } = parseArgs({ options: { n: { type: 'string' }, 'gap-ms': { type: 'string' }, short: { type: 'boolean', default: false }, out: { type: 'string' } } });
const short = a.short || !!process.env.BENCH_SHORT;
const N = Number(a.n ?? (short ? 3 : 20));
// Long enough for a pre-started runtime to import the package on a loaded 2-core machine.
const GAP = Number(a['gap-ms'] ?? (short ? 2000 : 3000));
const MODULES = 200;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]! : NaN;
};
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');

// A package of MODULES modules, each with a class and a few functions; the package imports them all.
const files: Record<string, string> = {};
for (let i = 0; i < MODULES; i++) {
  files[`heavylib/m${i}.py`] = `import json, re\nCONST = ${i}\nPATTERN = re.compile(r"x${i}+")\nclass C${i}:\n    def __init__(self):\n        self.v = CONST\n    def dump(self):\n        return json.dumps({"v": self.v})\n${Array.from({ length: 5 }, (_, k) => `def f${k}(x):\n    return x + ${k} + CONST\n`).join('')}`;
}
files['heavylib/__init__.py'] = `${Array.from({ length: MODULES }, (_, i) => `from . import m${i}`).join('\n')}\ndef total():\n    return sum(getattr(globals()["m%d" % i], "CONST") for i in range(${MODULES}))\n`;
const work = mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-py-'));
buildIndex(path.join(work, 'index'), [{ name: 'heavylib', version: '1.0.0', files }]);
const index = await serveIndex(path.join(work, 'index'));

const EXPECT = (MODULES * (MODULES - 1)) / 2;
const WITH = `import heavylib\ndef f(event):\n    return {"total": heavylib.total()}\n`;
const WITHOUT = `def f(event):\n    return {"total": ${EXPECT}}\n`;

interface Sample {
  latencyMs: number;
  initMs: number;
  cold: boolean;
}

async function coldStart(s: TestServer, source: string, reqs: boolean, name: string): Promise<Sample> {
  const dir = makeFunction({ 'f.py': source, ...(reqs ? { 'requirements.txt': 'heavylib==1.0.0\n' } : {}) }, undefined, name);
  try {
    await deploy(s, dir, name);
    await sleep(GAP); // pools refill (and preload) between deploy and first call, as they would in life
    const t0 = performance.now();
    const r = await invoke(s, name, {});
    const latencyMs = performance.now() - t0;
    if (r.status !== 200 || r.body?.total !== EXPECT) throw new Error(`${name}: ${r.status} ${r.text.slice(0, 300)}`);
    const rec = await admin(s, 'GET', `/invocations/${r.headers.get('x-lamina-request-id')}`);
    await admin(s, 'DELETE', `/functions/${name}`);
    return { latencyMs, initMs: rec.body?.initMs ?? NaN, cold: r.headers.get('x-lamina-cold-start') === '1' };
  } finally {
    rmSync(path.dirname(dir), { recursive: true, force: true });
  }
}

const env = { LAMINA_PIP_INDEX_URL: index.url };
const plain = await startServer({ tier: 'container', env: { ...env, LAMINA_PRELOAD: '0' } });
const pre = await startServer({ tier: 'container', env: { ...env, LAMINA_PRELOAD: '1' } });
const rows: Record<string, unknown>[] = [];
let installMs: number | undefined;
try {
  for (const s of [plain, pre]) {
    const dir = makeFunction({ 'f.py': WITH, 'requirements.txt': 'heavylib==1.0.0\n' }, undefined, 'first');
    await deploy(s, dir, 'first');
    await admin(s, 'DELETE', '/functions/first');
    rmSync(path.dirname(dir), { recursive: true, force: true });
  }
  installMs = (await admin(plain, 'GET', '/packages')).body.entries.find((e: { ecosystem: string }) => e.ecosystem === 'pip')?.installMs;
  const samples: Record<string, Sample[]> = { cache: [], preload: [], nodeps: [] };
  for (let i = 0; i < N; i++) {
    const c = await coldStart(plain, WITH, true, `c${i}`);
    const p = await coldStart(pre, WITH, true, `p${i}`);
    const b = await coldStart(plain, WITHOUT, false, `b${i}`);
    for (const [k, v] of [['cache', c], ['preload', p], ['nodeps', b]] as const) if (v.cold) samples[k]!.push(v);
  }
  for (const [variant, xs] of Object.entries(samples)) {
    rows.push({ variant, n: xs.length, coldP50: pct(xs.map((x) => x.latencyMs), 0.5), coldP90: pct(xs.map((x) => x.latencyMs), 0.9), initP50: pct(xs.map((x) => x.initMs), 0.5), initP90: pct(xs.map((x) => x.initMs), 0.9) });
  }
} finally {
  await plain.stop();
  await pre.stop();
  await index.close();
  rmSync(work, { recursive: true, force: true });
}

const load = os.loadavg().map((x) => x.toFixed(1)).join(' ');
console.log(`\nPython cold start, a ${MODULES}-module package from requirements.txt, container tier (${N} per variant, interleaved; pip install ${installMs ?? '?'} ms; load average ${load}; ${os.cpus().length} cores)\n`);
console.log('| variant | n | cold p50 ms | cold p90 ms | init p50 ms | init p90 ms |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.variant} | ${r.n} | ${f1(r.coldP50 as number)} | ${f1(r.coldP90 as number)} | ${f1(r.initP50 as number)} | ${f1(r.initP90 as number)} |`);
if (a.out) writeFileSync(a.out, JSON.stringify({ n: N, gapMs: GAP, load, installMs, rows }, null, 2));
