// Deploy-time compile for "sandbox": "isolate": one IIFE script, and refusals
// for Node built-ins and Node globals, through parseManifest + compileFunction.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { LaminaError } from '../../src/errors.js';
import { ISOLATE_CODE_ENTRY } from '../../src/registry/compile.js';
import { build } from './helpers.js';

function refused(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof LaminaError, String(err));
    assert.equal(err.type, 'InvalidFunction');
    assert.match(err.message, pattern);
    return true;
  };
}

test('an isolate build is one script with no node banner, handler on __laminaUser.default', async () => {
  const fn = await build({ 'index.ts': 'export async function handler() { return 1; }' });
  assert.equal(fn.codeEntry, ISOLATE_CODE_ENTRY);
  assert.deepEqual(fs.readdirSync(fn.codeDir), ['isolate.js']);
  const code = fs.readFileSync(path.join(fn.codeDir, 'isolate.js'), 'utf8');
  assert.match(code, /^var __laminaUser = \(\(\) => \{/);
  assert.doesNotMatch(code, /node:module|createRequire|import\.meta/);
});

test('Node built-ins are refused at deploy, naming the module and the alternatives', async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ 'index.ts': "import fs from 'fs';\nexport const handler = () => fs.existsSync('/');" }, /index\.ts:1:\d+: imports the Node built-in "fs": isolates have no Node built-ins; use "sandbox": "process" or "container"/],
    [{ 'index.ts': "import { join } from 'node:path';\nexport const handler = () => join('a');" }, /imports the Node built-in "node:path"/],
    [{ 'index.js': "const cp = require('child_process');\nexports.handler = () => cp.execSync('id');" }, /imports the Node built-in "child_process"/],
    [{ 'index.js': "import { promises } from 'fs/promises';\nexport const handler = () => 1;" }, /imports the Node built-in "fs\/promises"/],
    [{ 'index.ts': "import { x } from './lib.js';\nexport const handler = () => x;", 'lib.ts': "import 'node:crypto';\nexport const x = 1;" }, /lib\.ts:1:\d+: imports the Node built-in "node:crypto"/],
    [{ 'index.ts': 'export const handler = () => Buffer.from("x").length;' }, /index\.ts:1:\d+: uses the Node global "Buffer": isolates have no Node globals/],
    [{ 'index.ts': 'const key = process.env.API_KEY;\nexport const handler = () => key;' }, /index\.ts:1:\d+: uses the Node global "process".*"sandbox": "process" or "container"/],
    [{ 'index.js': 'exports.handler = () => __dirname;' }, /uses the Node global "__dirname"/],
  ];
  for (const [files, pattern] of cases) await assert.rejects(build(files), refused(pattern));
});

test('what is not a Node dependency still deploys', async () => {
  // A local named process, a feature-detected global, NODE_ENV, and an npm package named like a built-in.
  const fn = await build({
    'index.ts': [
      "import { EventEmitter } from 'events';",
      "import { mode } from './lib.js';",
      'const process = (x: number) => x * 2;',
      "const hasBuffer = typeof Buffer !== 'undefined' ? Buffer.name : 'none';",
      'export const handler = () => ({ p: process(2), hasBuffer, mode, e: typeof EventEmitter });',
    ].join('\n'),
    'lib.js': 'export const mode = process.env.NODE_ENV;',
    'node_modules/events/package.json': '{"name":"events","main":"index.js"}',
    'node_modules/events/index.js': 'exports.EventEmitter = class EventEmitter {};',
  });
  assert.equal(fn.codeEntry, 'isolate.js');
  const code = fs.readFileSync(path.join(fn.codeDir, 'isolate.js'), 'utf8');
  assert.match(code, /class EventEmitter/, 'the installed package was bundled');
  assert.match(code, /"production"/, 'NODE_ENV is defined as browser bundlers do');
});

test('other sandboxes keep the node bundle; compile errors keep their file:line', async () => {
  const node = await build({ 'index.ts': "import fs from 'fs';\nexport const handler = () => fs.existsSync('/');" }, { sandbox: 'process' });
  assert.equal(node.codeEntry, 'index.mjs');
  await assert.rejects(build({ 'index.ts': 'export const handler = ( => 1;' }), refused(/^compile error: index\.ts:1:\d+: /));
  await assert.rejects(build({ 'index.ts': "import x from 'left-pad-nowhere';\nexport const handler = () => x;" }), refused(/Could not resolve "left-pad-nowhere"/));
});

test('python functions cannot ask for the isolate tier', async () => {
  await assert.rejects(build({ 'f.py': 'def f(e):\n  return e\n' }, { runtime: 'python' }), refused(/"sandbox": "isolate" cannot run python \(isolates run JavaScript only\)/));
});

test('"auto" keeps an isolate build beside the node bundle when the code allows one', async () => {
  const plain = await build({ 'index.ts': 'export const handler = () => 1;' }, { sandbox: 'auto' });
  assert.equal(plain.codeEntry, 'index.mjs');
  assert.deepEqual(fs.readdirSync(plain.codeDir).sort(), ['index.mjs', 'isolate.js']);
  const usesNode = await build({ 'index.ts': "import os from 'node:os';\nexport const handler = () => os.EOL;" }, { sandbox: 'auto' });
  assert.deepEqual(fs.readdirSync(usesNode.codeDir), ['index.mjs'], 'no isolate build, no deploy error');
});
