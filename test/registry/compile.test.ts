import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LaminaError } from '../../src/errors.js';
import { compileFunction } from '../../src/registry/compile.js';
import { listFiles } from '../../src/registry/files.js';
import { parseManifest } from '../../src/registry/manifest.js';
import { fnDir, tempDir } from './helpers.js';

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

/** Compiles a function dir and imports the result. */
async function build(files: Record<string, string>, manifest: Record<string, unknown> = {}) {
  const src = fnDir('fn', files);
  const m = parseManifest(manifest, { dirName: 'fn', files: await listFiles(src, { skipIgnored: true }) });
  const out = tempDir('lamina-out-');
  const { codeEntry } = await compileFunction(src, m, await listFiles(src, { skipIgnored: true }), out);
  return { out, codeEntry, load: () => import(pathToFileURL(path.join(out, codeEntry)).href) as Promise<Record<string, Handler>> };
}

const ctx = { requestId: 'r1', functionName: 'fn' };

test('TS named export handler with a relative import and a node built-in', async () => {
  const { out, codeEntry, load } = await build({
    'index.ts': [
      "import { greet } from './lib/greet.js';",
      "import os from 'node:os';",
      'export async function handler(event: { who: string }, context: { requestId: string }) {',
      '  return { msg: greet(event.who), id: context.requestId, eol: os.EOL.length };',
      '}',
    ].join('\n'),
    'lib/greet.ts': 'export const greet = (who: string): string => `hi ${who}`;',
  });
  assert.equal(codeEntry, 'index.mjs');
  assert.deepEqual(fs.readdirSync(out), ['index.mjs'], 'one output file');
  const mod = await load();
  assert.deepEqual(await mod.handler!({ who: 'ada' }, ctx), { msg: 'hi ada', id: 'r1', eol: 1 });
  assert.equal(mod.default, mod.handler, 'also exported as default');
});

test('TS default export', async () => {
  const { load } = await build({
    'index.ts': 'export default async (event: { n: number }, context: { functionName: string }) => ({ n: event.n * 2, fn: context.functionName });',
  });
  const mod = await load();
  assert.deepEqual(await mod.handler!({ n: 21 }, ctx), { n: 42, fn: 'fn' });
});

test('CommonJS exports.handler in a .js entry, requiring a built-in and a local module', async () => {
  const { load } = await build({
    'index.js': [
      "const path = require('path');",
      "const { twice } = require('./util');",
      'exports.handler = async (event) => ({ base: path.basename(event.p), v: twice(event.v) });',
    ].join('\n'),
    'util.js': 'module.exports.twice = (x) => x * 2;',
  });
  const mod = await load();
  assert.deepEqual(await mod.handler!({ p: '/a/b.txt', v: 4 }, ctx), { base: 'b.txt', v: 8 });
});

test('CommonJS module.exports = { handler }', async () => {
  const { load } = await build({
    'index.js': "const crypto = require('node:crypto');\nasync function handler(e) { return crypto.createHash('sha1').update(e.s).digest('hex').length; }\nmodule.exports = { handler };",
  });
  const mod = await load();
  assert.equal(await mod.handler!({ s: 'x' }, ctx), 40);
});

test('a custom handler name is exported under that name', async () => {
  const { load } = await build({ 'index.ts': 'export const main = async () => "main!";' }, { handler: 'main' });
  const mod = await load();
  assert.equal(await mod.main!({}, ctx), 'main!');
  assert.equal(mod.default, mod.main);
});

test('an ESM module that defines its own require and __dirname still bundles', async () => {
  const { load } = await build({
    'index.mjs': [
      "import { createRequire } from 'node:module';",
      'const require = createRequire(import.meta.url);',
      "const __dirname = 'mine';",
      "export async function handler() { return { sep: require('path').sep, d: __dirname }; }",
    ].join('\n'),
  });
  const mod = await load();
  assert.deepEqual(await mod.handler!({}, ctx), { sep: '/', d: 'mine' });
});

test('a module without the handler fails at load with a clear message', async () => {
  const { load } = await build({ 'index.ts': 'export const other = 1;' });
  await assert.rejects(load(), /index\.ts does not export a function "handler"/);
});

test('a TS syntax error is InvalidFunction with file:line', async () => {
  await assert.rejects(
    build({ 'index.ts': 'export const a = 1;\nexport function handler( {\n  return 1;\n}\n' }),
    (err: unknown) => {
      assert.ok(err instanceof LaminaError);
      assert.equal(err.type, 'InvalidFunction');
      assert.match(err.message, /^compile error: index\.ts:\d+:\d+: /);
      return true;
    },
  );
  await assert.rejects(
    build({ 'index.ts': "import { x } from './lib/x.js';\nexport const handler = async () => x;", 'lib/x.ts': 'export const x = ;\n' }),
    (err: unknown) => err instanceof LaminaError && /compile error: lib\/x\.ts:1:\d+: /.test(err.message),
  );
});

test('missing relative import and missing package are compile errors', async () => {
  await assert.rejects(
    build({ 'index.ts': "import './nope.js';\nexport const handler = async () => 1;" }),
    (err: unknown) => err instanceof LaminaError && /index\.ts:1:\d+: Could not resolve "\.\/nope\.js"/.test(err.message),
  );
  await assert.rejects(
    build({ 'index.ts': "import x from 'left-pad-nowhere';\nexport const handler = async () => x;" }),
    (err: unknown) => err instanceof LaminaError && /Could not resolve "left-pad-nowhere".*node_modules/.test(err.message),
  );
});

test('imports from outside the function directory are refused', async () => {
  const secretDir = tempDir();
  fs.writeFileSync(path.join(secretDir, 'secret.js'), 'export default "s3cret";');
  await assert.rejects(
    build({ 'index.ts': `import s from ${JSON.stringify(path.join(secretDir, 'secret.js'))};\nexport const handler = async () => s;` }),
    (err: unknown) => err instanceof LaminaError && err.type === 'InvalidFunction' && /outside the function directory/.test(err.message),
  );
});

test('python: .py files are copied as they are, subdirectories kept, entry unchanged', async () => {
  const src = fnDir('py', {
    'f.py': 'def f(event):\n    return event\n',
    'pkg/util.py': 'X = 1\n',
    'README.md': 'not code',
    '__pycache__/f.cpython-311.pyc': 'bytecode',
    '.venv/lib/site.py': 'ignored',
  });
  const files = await listFiles(src, { skipIgnored: true });
  const m = parseManifest({ runtime: 'python' }, { dirName: 'py', files });
  const out = tempDir('lamina-out-');
  const { codeEntry } = await compileFunction(src, m, files, out);
  assert.equal(codeEntry, 'f.py');
  assert.deepEqual(await listFiles(out, { skipIgnored: false }), ['f.py', 'pkg/util.py']);
  assert.equal(fs.readFileSync(path.join(out, 'f.py'), 'utf8'), 'def f(event):\n    return event\n');
});
