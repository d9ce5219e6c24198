// Fixture npm packages made at test time: package dirs written to a temp dir,
// packed with `npm pack`, and function dirs that depend on the tarballs through
// `file:./vendor/<name>-<version>.tgz`, with a lockfile made offline by npm. No
// network anywhere.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface FixturePackage {
  name: string;
  version?: string;
  /** Files by relative path; index.js defaults to `module.exports = {}`. */
  files?: Record<string, string>;
  dependencies?: Record<string, string>;
  scripts?: Record<string, string>;
  /** More package.json fields (main, browser, type...). */
  extra?: Record<string, unknown>;
}

const NPM_ENV = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, env: NPM_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Packs the packages (one `npm pack` for all) into `outDir`; returns name -> tarball file name. */
export function packFixtures(pkgs: FixturePackage[], outDir: string): Map<string, string> {
  if (pkgs.length === 0) return new Map();
  const src = mkdtempSync(path.join(os.tmpdir(), 'lamina-fixture-src-'));
  try {
    const dirs: string[] = [];
    for (const p of pkgs) {
      const dir = path.join(src, p.name.replace('/', '__'));
      mkdirSync(dir, { recursive: true });
      const pkg = { name: p.name, version: p.version ?? '1.0.0', main: 'index.js', ...(p.dependencies ? { dependencies: p.dependencies } : {}), ...(p.scripts ? { scripts: p.scripts } : {}), ...p.extra };
      writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
      const files = { 'index.js': 'module.exports = {};\n', ...p.files };
      for (const [rel, text] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        writeFileSync(path.join(dir, rel), text);
      }
      dirs.push(dir);
    }
    mkdirSync(outDir, { recursive: true });
    const out = JSON.parse(npm(['pack', '--json', '--ignore-scripts', `--pack-destination=${outDir}`, ...dirs], src)) as { name: string; filename: string }[];
    return new Map(out.map((o) => [o.name, path.basename(o.filename)]));
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
}

/**
 * `n` small CommonJS packages `<prefix>0..<prefix>{n-1}` forming a binary tree
 * (package i requires 2i+1 and 2i+2 as declared dependencies); `<prefix>0`'s
 * `sum()` walks the whole tree, so importing it loads every module.
 */
export function moduleTree(n = 50, prefix = 'tree'): FixturePackage[] {
  const pkgs: FixturePackage[] = [];
  for (let i = 0; i < n; i++) {
    const kids = [2 * i + 1, 2 * i + 2].filter((k) => k < n);
    // ~1 KB of code each, like a small real module.
    const body = [
      `'use strict';`,
      ...kids.map((k) => `const c${k} = require('${prefix}${k}');`),
      `function helper(x) { let s = 0; for (let j = 0; j < x; j++) s += (j * ${i + 1}) % 7; return s; }`,
      `const table = ${JSON.stringify(Array.from({ length: 40 }, (_, j) => `${prefix}-${i}-${j}`))};`,
      `exports.id = ${i};`,
      `exports.size = () => table.length;`,
      `exports.sum = () => ${i}${kids.map((k) => ` + c${k}.sum()`).join('')};`,
      `exports.helper = helper;`,
    ].join('\n');
    pkgs.push({ name: `${prefix}${i}`, files: { 'index.js': body }, dependencies: Object.fromEntries(kids.map((k) => [`${prefix}${k}`, '^1.0.0'])) });
  }
  return pkgs;
}

export interface FunctionFixture {
  /** The function dir. */
  dir: string;
  /** Removes the temp dir holding it. */
  remove(): void;
}

/**
 * A function dir whose package.json depends on every given package as a
 * `file:` tarball in vendor/ (transitive registry-style ranges are satisfied by
 * them, offline), with a lockfile made by `npm install --package-lock-only --offline`.
 */
export function functionWithPackages(opts: {
  name: string;
  files: Record<string, string>;
  packages: FixturePackage[];
  /** Write a lockfile (default true). */
  lockfile?: boolean;
  manifest?: Record<string, unknown>;
  /** More package.json fields of the function (allowScripts...). */
  packageJson?: Record<string, unknown>;
  /** Pack once and reuse (tarballs by name, in this dir). */
  vendorFrom?: { dir: string; files: Map<string, string> };
}): FunctionFixture {
  const base = mkdtempSync(path.join(os.tmpdir(), 'lamina-pkgfn-'));
  const dir = path.join(base, opts.name);
  const vendor = path.join(dir, 'vendor');
  mkdirSync(vendor, { recursive: true });
  let tarballs: Map<string, string>;
  if (opts.vendorFrom) {
    tarballs = new Map();
    for (const p of opts.packages) {
      const f = opts.vendorFrom.files.get(p.name);
      if (!f) throw new Error(`no tarball for ${p.name}`);
      execFileSync('cp', [path.join(opts.vendorFrom.dir, f), path.join(vendor, f)]);
      tarballs.set(p.name, f);
    }
  } else tarballs = packFixtures(opts.packages, vendor);
  const dependencies = Object.fromEntries([...tarballs].map(([name, file]) => [name, `file:./vendor/${file}`]));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: opts.name, version: '1.0.0', private: true, dependencies, ...opts.packageJson }, null, 2));
  for (const [rel, text] of Object.entries(opts.files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text);
  }
  if (opts.manifest) writeFileSync(path.join(dir, 'lamina.json'), JSON.stringify(opts.manifest));
  if (opts.lockfile !== false) {
    npm(['install', '--package-lock-only', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], dir);
  }
  return { dir, remove: () => rmSync(base, { recursive: true, force: true }) };
}
