import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LaminaError } from '../../src/errors.js';
import { packDirectory } from '../../src/registry/archive.js';
import { Registry } from '../../src/registry/registry.js';
import type { FunctionVersion } from '../../src/registry/types.js';
import { openDatabase, type Db } from '../../src/store/db.js';
import { fnDir, rawTarGz, tempDir } from './helpers.js';

async function openAt(dataDir: string): Promise<{ db: Db; reg: Registry }> {
  const db = await openDatabase(dataDir);
  return { db, reg: await Registry.open(db, dataDir) };
}

/** Runs fn with a registry over a fresh data dir, closing the db afterwards. */
async function withRegistry(fn: (reg: Registry, dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = tempDir('lamina-data-');
  const { db, reg } = await openAt(dataDir);
  try {
    await fn(reg, dataDir);
  } finally {
    await db.close();
  }
}

const handlerSrc = (v: string) => `export async function handler(event: unknown) { return { v: ${JSON.stringify(v)}, event }; }`;

function isInvalid(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof LaminaError, String(err));
    assert.equal(err.type, 'InvalidFunction');
    assert.match(err.message, pattern);
    return true;
  };
}

test('deployDir stores a runnable, read-only version and makes it current', async () => {
  await withRegistry(async (reg, dataDir) => {
    const events: FunctionVersion[] = [];
    reg.on('deployed', (fn) => events.push(fn));
    const fn = await reg.deployDir(fnDir('hello', { 'index.ts': handlerSrc('one'), 'lamina.json': '{"memoryMb": 256}' }));

    assert.equal(fn.name, 'hello');
    assert.equal(fn.version, 1);
    assert.match(fn.codeHash, /^[0-9a-f]{64}$/);
    assert.equal(fn.codeDir, path.join(dataDir, 'code', fn.codeHash));
    assert.equal(fn.codeEntry, 'index.mjs');
    assert.equal(fn.manifest.memoryMb, 256);
    // index.mjs for the node tiers, isolate.js for a worker whose auto tier is isolate.
    assert.deepEqual(fs.readdirSync(fn.codeDir).sort(), ['index.mjs', 'isolate.js']);
    assert.equal(fn.sizeBytes, ['index.mjs', 'isolate.js'].reduce((n, f) => n + fs.statSync(path.join(fn.codeDir, f)).size, 0));
    assert.deepEqual(events, [fn]);
    assert.equal(reg.current('hello'), fn);

    assert.equal(fs.statSync(fn.codeDir).mode & 0o777, 0o555);
    assert.equal(fs.statSync(path.join(fn.codeDir, 'index.mjs')).mode & 0o777, 0o444);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'tmp')), [], 'no staging left behind');

    const mod = await import(pathToFileURL(path.join(fn.codeDir, fn.codeEntry)).href);
    assert.deepEqual(await mod.handler({ a: 1 }, {}), { v: 'one', event: { a: 1 } });

    assert.deepEqual(reg.list(), [
      { name: 'hello', version: 1, runtime: 'node', memoryMb: 256, sandbox: 'auto', codeHash: fn.codeHash, updatedAt: fn.createdAt },
    ]);
    assert.deepEqual(await reg.getVersion('hello', 1), fn);
    assert.equal(await reg.getVersion('hello', 2), undefined);
    assert.equal(reg.current('nope'), undefined);
    assert.equal(await reg.describe('nope'), undefined);
  });
});

test('redeploy increments the version; identical code shares one code dir', async () => {
  await withRegistry(async (reg, dataDir) => {
    const v1 = await reg.deployDir(fnDir('f', { 'index.ts': handlerSrc('a') }));
    const v2 = await reg.deployDir(fnDir('f', { 'index.ts': handlerSrc('a'), 'lamina.json': '{"timeoutMs": 5}' }));
    const v3 = await reg.deployDir(fnDir('f', { 'index.ts': handlerSrc('b') }));
    const other = await reg.deployDir(fnDir('g', { 'index.ts': handlerSrc('a') }));
    assert.deepEqual([v1.version, v2.version, v3.version, other.version], [1, 2, 3, 1]);
    assert.equal(v1.codeHash, v2.codeHash, 'manifest changes alone do not change the code');
    assert.equal(other.codeHash, v1.codeHash, 'same code, other function: same dir');
    assert.notEqual(v3.codeHash, v1.codeHash);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'code')).sort(), [v1.codeHash, v3.codeHash].sort());
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'tmp')), []);
    assert.equal(reg.current('f')?.version, 3);
    assert.equal(reg.current('f')?.manifest.timeoutMs, 30000);
    assert.equal((await reg.getVersion('f', 2))?.manifest.timeoutMs, 5, 'old versions stay readable');

    const d = await reg.describe('f');
    assert.equal(d?.current.version, 3);
    assert.deepEqual(d?.versions.map((x) => [x.version, x.codeHash]), [
      [1, v1.codeHash],
      [2, v1.codeHash],
      [3, v3.codeHash],
    ]);
    assert.deepEqual(reg.list().map((s) => [s.name, s.version]), [['f', 3], ['g', 1]]);
  });
});

test('everything survives a restart', async () => {
  const dataDir = tempDir('lamina-data-');
  let first = await openAt(dataDir);
  await first.reg.deployDir(fnDir('a', { 'index.ts': handlerSrc('a1') }));
  const a2 = await first.reg.deployDir(fnDir('a', { 'index.ts': handlerSrc('a2'), 'lamina.json': '{"env": {"K": "v"}}' }));
  const b1 = await first.reg.deployDir(fnDir('b', { 'index.js': 'exports.handler = async () => 1;' }));
  await first.reg.deployDir(fnDir('gone', { 'index.ts': handlerSrc('x') }));
  await first.reg.remove('gone');
  const listBefore = first.reg.list();
  await first.db.close();

  const second = await openAt(dataDir);
  try {
    assert.deepEqual(second.reg.current('a'), a2);
    assert.deepEqual(second.reg.current('b'), b1);
    assert.equal(second.reg.current('gone'), undefined);
    assert.deepEqual(second.reg.list(), listBefore);
    assert.equal((await second.reg.getVersion('a', 1))?.version, 1);
    // Numbering continues where it stopped.
    assert.equal((await second.reg.deployDir(fnDir('a', { 'index.ts': handlerSrc('a3') }))).version, 3);
  } finally {
    await second.db.close();
  }
});

test('remove deletes the function and its versions; numbers are never reused', async () => {
  await withRegistry(async (reg) => {
    const removed: string[] = [];
    reg.on('removed', (name) => removed.push(name));
    const v1 = await reg.deployDir(fnDir('f', { 'index.ts': handlerSrc('a') }));
    await reg.deployDir(fnDir('f', { 'index.ts': handlerSrc('b') }));
    assert.equal(await reg.remove('f'), true);
    assert.deepEqual(removed, ['f']);
    assert.equal(reg.current('f'), undefined);
    assert.deepEqual(reg.list(), []);
    assert.equal(await reg.describe('f'), undefined);
    assert.equal(await reg.getVersion('f', 1), undefined);
    assert.ok(fs.existsSync(v1.codeDir), 'code dirs are left for a GC');
    assert.equal(await reg.remove('f'), false);
    assert.equal(await reg.remove('never-existed'), false);
    assert.deepEqual(removed, ['f']);

    const again = await reg.deployDir(fnDir('f', { 'index.ts': handlerSrc('c') }));
    assert.equal(again.version, 3, 'a redeploy after delete continues the sequence');
    assert.deepEqual((await reg.describe('f'))?.versions.map((v) => v.version), [3]);
  });
});

test('concurrent deploys of one function all succeed with distinct versions', async () => {
  await withRegistry(async (reg, dataDir) => {
    const order: number[] = [];
    reg.on('deployed', (fn) => order.push(fn.version));
    const dirs = Array.from({ length: 6 }, (_, i) => fnDir('busy', { 'index.ts': handlerSrc(`v${i % 3}`) }));
    const results = await Promise.all(dirs.map((d) => reg.deployDir(d)));
    assert.deepEqual(results.map((r) => r.version).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(order, [1, 2, 3, 4, 5, 6], 'events follow commit order');
    assert.equal(reg.current('busy')?.version, 6);
    assert.equal(fs.readdirSync(path.join(dataDir, 'code')).length, 3, 'identical code raced into one dir each');
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'tmp')), []);
  });
});

test('deployArchive extracts, deploys under the given name and cleans up', async () => {
  await withRegistry(async (reg, dataDir) => {
    const src = fnDir('local-dir-name', { 'index.ts': handlerSrc('arch'), 'node_modules/x/index.js': 'x', '.git/HEAD': 'x' });
    const fn = await reg.deployArchive(await packDirectory(src), 'from-archive');
    assert.equal(fn.name, 'from-archive');
    assert.equal(fn.version, 1);
    // Wrapped in one top-level directory.
    const wrapped = rawTarGz([{ path: 'proj/', type: '5' }, { path: 'proj/index.ts', data: handlerSrc('wrapped') }]);
    const fn2 = await reg.deployArchive(wrapped, 'from-archive');
    assert.equal(fn2.version, 2);
    const mod = await import(pathToFileURL(path.join(fn2.codeDir, fn2.codeEntry)).href);
    assert.deepEqual(await mod.handler(1), { v: 'wrapped', event: 1 });
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'tmp')), []);

    await assert.rejects(reg.deployArchive(Buffer.from('nope'), 'x'), (err: unknown) => err instanceof LaminaError && err.type === 'BadRequest');
    await assert.rejects(reg.deployArchive(wrapped, 'Bad Name'), isInvalid(/invalid function name "Bad Name"/));
    await assert.rejects(
      reg.deployArchive(rawTarGz([{ path: 'index.ts', data: 'export const handler = (' }]), 'broken'),
      isInvalid(/compile error: index\.ts:1:/),
    );
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'tmp')), [], 'cleaned after failures too');
    assert.equal(reg.current('broken'), undefined);
  });
});

test('names: manifest vs deploy name vs directory name', async () => {
  await withRegistry(async (reg) => {
    const named = fnDir('dir', { 'index.ts': handlerSrc('n'), 'lamina.json': '{"name": "declared"}' });
    assert.equal((await reg.deployDir(named)).name, 'declared', 'the manifest name beats the dir name');
    assert.equal((await reg.deployDir(named, { name: 'declared' })).name, 'declared');
    await assert.rejects(reg.deployDir(named, { name: 'other' }), isInvalid(/"name" is "declared" but the function is being deployed as "other"/));
    const plain = fnDir('dir', { 'index.ts': handlerSrc('p') });
    assert.equal((await reg.deployDir(plain, { name: 'given' })).name, 'given', 'opts.name beats the dir name');
    assert.equal((await reg.deployDir(plain)).name, 'dir');
  });
});

test('invalid functions are refused before anything is stored', async () => {
  await withRegistry(async (reg, dataDir) => {
    await assert.rejects(reg.deployDir(fnDir('f', { 'index.ts': handlerSrc('x'), 'lamina.json': '{"memoryMb": 1,}' })), isInvalid(/^lamina\.json: invalid JSON \(/));
    await assert.rejects(reg.deployDir(fnDir('f', { 'index.ts': handlerSrc('x'), 'lamina.json': '{"memory": 128}' })), isInvalid(/unknown field "memory"/));
    await assert.rejects(reg.deployDir(fnDir('f', { 'main.ts': handlerSrc('x') })), isInvalid(/no entry file/));
    await assert.rejects(reg.deployDir(fnDir('f', { 'index.ts': 'export function handler( {' })), isInvalid(/compile error: index\.ts:\d+:\d+/));
    await assert.rejects(reg.deployDir(path.join(dataDir, 'missing')), isInvalid(/is not a directory/));
    assert.deepEqual(reg.list(), []);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'code')), []);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'tmp')), []);
    // A BOM-prefixed manifest is fine.
    assert.equal((await reg.deployDir(fnDir('bom', { 'index.ts': handlerSrc('x'), 'lamina.json': '\uFEFF{"memoryMb": 64}' }))).manifest.memoryMb, 64);
  });
});

test('python functions are stored as their .py files', async () => {
  await withRegistry(async (reg) => {
    const fn = await reg.deployDir(fnDir('py', { 'f.py': 'def f(event):\n    return event\n', 'lib/u.py': 'X = 1\n', 'lamina.json': '{"runtime": "python"}' }));
    assert.equal(fn.codeEntry, 'f.py');
    assert.equal(fn.manifest.handler, 'f');
    assert.deepEqual(fs.readdirSync(fn.codeDir).sort(), ['f.py', 'lib']);
    assert.equal(fs.readFileSync(path.join(fn.codeDir, 'lib/u.py'), 'utf8'), 'X = 1\n');
    assert.equal(fs.statSync(path.join(fn.codeDir, 'lib')).mode & 0o777, 0o555);
  });
});
