// Compiling against installed dependencies (a hand-made node_modules standing in
// for a cache entry): node bundles keep them external; isolate builds bundle the
// pure-JavaScript ones and refuse, by name, those an isolate cannot run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { LaminaError } from '../../src/errors.js';
import { PRELOAD_FILE } from '../../src/packages/bundle.js';
import { compileFunction, ISOLATE_CODE_ENTRY, NODE_CODE_ENTRY } from '../../src/registry/compile.js';
import { listFiles } from '../../src/registry/files.js';
import { parseManifest } from '../../src/registry/manifest.js';
import { fnDir, tempDir, writeTree } from '../registry/helpers.js';

/** A node_modules dir from a map of package name -> files. */
function nodeModules(pkgs: Record<string, Record<string, string>>): string {
  const nm = path.join(tempDir('lamina-nm-'), 'node_modules');
  for (const [name, files] of Object.entries(pkgs)) writeTree(path.join(nm, name), { 'package.json': JSON.stringify({ name, version: '1.0.0', main: 'index.js' }), ...files });
  return nm;
}

async function compile(files: Record<string, string>, nm: string, sandbox: string) {
  const dir = fnDir('pkgfn', { 'lamina.json': JSON.stringify({ sandbox }), ...files });
  const list = await listFiles(dir, { skipIgnored: true });
  const manifest = parseManifest(JSON.parse(files['lamina.json'] ?? JSON.stringify({ sandbox })), { dirName: 'pkgfn', files: list });
  const out = tempDir('lamina-out-');
  const r = await compileFunction(dir, manifest, list, out, { nodeModules: nm, names: ['dep'] });
  return { ...r, out, read: (f: string) => fs.readFileSync(path.join(out, f), 'utf8') };
}

const PURE = {
  dep: { 'index.js': "const h = require('helper'); module.exports = { greet: (n) => h.hi + ' ' + n };" },
  helper: { 'index.js': "exports.hi = 'hello';" },
};
const USES = { 'index.mjs': "import dep from 'dep';\nexport async function handler(e) { return dep.greet(e.name); }" };

test('node bundles leave installed packages external, to be imported from the cache at run time', async () => {
  const nm = nodeModules(PURE);
  const r = await compile(USES, nm, 'process');
  assert.equal(r.codeEntry, NODE_CODE_ENTRY);
  const code = r.read(NODE_CODE_ENTRY);
  assert.match(code, /from "dep"|from 'dep'/);
  assert.doesNotMatch(code, /'hello'/, 'the dependency is not in the bundle');
  // Beside it, the module pre-started runtimes import ahead of the function: its dependencies only.
  const pre = r.read(PRELOAD_FILE);
  assert.match(pre, /^import "dep";$/m);
  assert.doesNotMatch(pre, /greet|handler/);
  // CommonJS functions keep require(): the preload module requires the same way (dual packages load the same variant).
  const cjs = await compile({ 'index.js': "const dep = require('dep');\nexports.handler = async (e) => dep.greet(e.name);", 'package.json': '{"type":"commonjs"}' }, nm, 'process');
  assert.match(cjs.read(PRELOAD_FILE), /^require\("dep"\);$/m);
  // A package not installed is still a compile error, with the hint.
  await assert.rejects(compile({ 'index.mjs': "import x from 'not-installed';\nexport const handler = () => x;" }, nm, 'process'), (err: unknown) => err instanceof LaminaError && /Could not resolve "not-installed".*package\.json "dependencies"/.test(err.message));
});

test('isolate builds bundle pure-JavaScript packages; "auto" gets both builds', async () => {
  const nm = nodeModules({
    ...PURE,
    // A package whose browser map turns a Node module off, and one guarding its Buffer use: both fine.
    mapped: { 'index.js': "const fs = require('fs'); module.exports = typeof Buffer !== 'undefined' ? Buffer.name : 'no buffer';", 'package.json': JSON.stringify({ name: 'mapped', version: '1.0.0', main: 'index.js', browser: { fs: false } }) },
  });
  const r = await compile({ 'index.mjs': "import dep from 'dep'; import m from 'mapped';\nexport async function handler(e) { return dep.greet(e.name) + m; }" }, nm, 'isolate');
  assert.equal(r.codeEntry, ISOLATE_CODE_ENTRY);
  assert.match(r.read(ISOLATE_CODE_ENTRY), /'hello'|"hello"/, 'the dependency is bundled in');
  const auto = await compile(USES, nm, 'auto');
  assert.deepEqual(fs.readdirSync(auto.out).sort(), [NODE_CODE_ENTRY, ISOLATE_CODE_ENTRY, PRELOAD_FILE].sort());
});

test('a package an isolate cannot run is refused at deploy, named with the dependency that pulled it in', async () => {
  const cases: [Record<string, Record<string, string>>, RegExp][] = [
    [{ dep: { 'index.js': "module.exports = require('fs').readFileSync;" } }, /package "dep" imports the Node built-in "fs": it cannot run in an isolate; use "sandbox": "process" or "container"/],
    [{ dep: { 'index.js': "module.exports = require('inner');" }, inner: { 'index.js': "module.exports = require('node:crypto');" } }, /package "dep" \(through "inner"\) imports the Node built-in "node:crypto"/],
    [{ dep: { 'index.js': "module.exports = require('./build/addon.node');", 'build/addon.node': 'ELF' } }, /package "dep" is a native addon \(addon\.node\): it cannot run in an isolate/],
    [{ dep: { 'index.js': "module.exports = (s) => Buffer.from(s).toString('hex');" } }, /package "dep" uses the Node global "Buffer" \(dep\/index\.js\): it cannot run in an isolate/],
  ];
  for (const [pkgs, pattern] of cases) {
    await assert.rejects(compile(USES, nodeModules(pkgs), 'isolate'), (err: unknown) => {
      assert.ok(err instanceof LaminaError && err.type === 'InvalidFunction', String(err));
      assert.match(err.message, pattern);
      return true;
    });
    // "auto" still deploys, without an isolate build.
    const auto = await compile(USES, nodeModules(pkgs), 'auto');
    assert.deepEqual(fs.readdirSync(auto.out).sort(), [NODE_CODE_ENTRY, PRELOAD_FILE].sort());
  }
});
