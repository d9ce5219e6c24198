import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { LaminaError } from '../../src/errors.js';
import { extractArchive, packDirectory } from '../../src/registry/archive.js';
import { listFiles } from '../../src/registry/files.js';
import { fnDir, rawTarGz, tempDir, writeTree, type RawEntry } from './helpers.js';

async function refused(buf: Buffer, pattern: RegExp, limits = {}): Promise<string> {
  const dest = path.join(tempDir(), 'out');
  await assert.rejects(extractArchive(buf, dest, limits), (err: unknown) => {
    assert.ok(err instanceof LaminaError, String(err));
    assert.equal(err.type, 'BadRequest');
    assert.match(err.message, pattern);
    return true;
  });
  return dest;
}

test('pack then extract round-trips a function dir, skipping node_modules and dotfiles', async () => {
  const src = fnDir('hello', {
    'index.ts': 'export const handler = async () => 1;',
    'lib/a.ts': 'export const a = 1;',
    [`lib/${'long'.repeat(40)}.ts`]: 'long path (pax header)',
    'lamina.json': '{}',
    'node_modules/dep/index.js': 'x',
    '.git/HEAD': 'ref',
    '.env': 'SECRET=1',
  });
  const buf = await packDirectory(src);
  assert.equal(buf[0], 0x1f);
  assert.deepEqual(await packDirectory(src), buf, 'packing is deterministic');
  const dest = path.join(tempDir(), 'x');
  const root = await extractArchive(buf, dest);
  assert.equal(root, dest, 'several top-level entries: the root is the destination');
  assert.deepEqual(await listFiles(root, { skipIgnored: false }), ['index.ts', 'lamina.json', 'lib/a.ts', `lib/${'long'.repeat(40)}.ts`]);
  assert.equal(fs.readFileSync(path.join(root, 'lib/a.ts'), 'utf8'), 'export const a = 1;');
});

test('packDirectory stores symlinked files as files', async () => {
  const src = fnDir('hello', { 'real.ts': 'export const handler = async () => 1;' });
  fs.symlinkSync('real.ts', path.join(src, 'index.ts'));
  const root = await extractArchive(await packDirectory(src), path.join(tempDir(), 'x'));
  assert.ok(fs.lstatSync(path.join(root, 'index.ts')).isFile());
  await assert.rejects(packDirectory(path.join(src, 'nope')), /not a directory/);
});

test('an archive holding exactly one directory is rooted at that directory', async () => {
  const buf = rawTarGz([
    { path: 'myfn/', type: '5' },
    { path: 'myfn/index.ts', data: 'x' },
    { path: 'myfn/lib/u.ts', data: 'y' },
  ]);
  const dest = path.join(tempDir(), 'x');
  assert.equal(await extractArchive(buf, dest), path.join(dest, 'myfn'));
  // Without an explicit directory entry too.
  const dest2 = path.join(tempDir(), 'x');
  assert.equal(await extractArchive(rawTarGz([{ path: './only/index.ts', data: 'x' }]), dest2), path.join(dest2, 'only'));
  // A single top-level *file* is not a root dir.
  const dest3 = path.join(tempDir(), 'x');
  assert.equal(await extractArchive(rawTarGz([{ path: 'index.ts', data: 'x' }]), dest3), dest3);
  // One dir plus something else: the destination is the root.
  const dest4 = path.join(tempDir(), 'x');
  assert.equal(await extractArchive(rawTarGz([{ path: 'a/index.ts', data: 'x' }, { path: 'b.txt', data: '' }]), dest4), dest4);
});

test('path traversal and absolute paths are refused, and nothing is written', async () => {
  const base = tempDir();
  const cases: RawEntry[][] = [
    [{ path: '../evil.txt', data: 'x' }],
    [{ path: 'ok/../../evil.txt', data: 'x' }],
    [{ path: 'a\\..\\..\\evil.txt', data: 'x' }],
  ];
  for (const entries of cases) {
    const dest = path.join(base, 'out');
    await assert.rejects(extractArchive(rawTarGz([{ path: 'index.ts', data: '1' }, ...entries]), dest), /invalid archive: .*leaves the archive root/);
    assert.equal(fs.existsSync(dest), false, 'validation happens before any write');
  }
  assert.equal(fs.existsSync(path.join(path.dirname(base), 'evil.txt')), false);
  await refused(rawTarGz([{ path: '/tmp/evil.txt', data: 'x' }]), /absolute path/);
  await refused(rawTarGz([{ path: 'C:/evil.txt', data: 'x' }]), /absolute path/);
});

test('symlinks, hard links and device files are refused', async () => {
  await refused(rawTarGz([{ path: 'index.ts', data: '1' }, { path: 'link', type: '2', linkpath: '/etc/passwd' }]), /"link" is a symbolic link/);
  await refused(rawTarGz([{ path: 'index.ts', data: '1' }, { path: 'hard', type: '1', linkpath: 'index.ts' }]), /"hard" is a hard link/);
  await refused(rawTarGz([{ path: 'dev', type: '3' }]), /"dev" is a device file/);
});

test('size and entry-count limits are enforced', async () => {
  const big = Buffer.alloc(2048, 'a');
  await refused(rawTarGz([{ path: 'a', data: big }]), /exceed 1024 bytes/, { maxBytes: 1024 });
  await refused(rawTarGz([{ path: 'a', data: big }, { path: 'b', data: big }]), /exceed 3000 bytes/, { maxBytes: 3000 });
  // A header that lies about its size is caught too.
  await refused(rawTarGz([{ path: 'a', data: big, size: 10 }, { path: 'b', data: 'x' }]), /corrupt|exceed/, { maxBytes: 1024 });
  await refused(rawTarGz([1, 2, 3, 4].map((i) => ({ path: `f${i}`, data: 'x' }))), /more than 3 entries/, { maxFiles: 3 });
  // A gzip bomb stops at the inflate cap instead of filling memory.
  const bomb = zlib.gzipSync(Buffer.alloc(20 * 1024 * 1024));
  await refused(bomb, /exceed 1024 bytes/, { maxBytes: 1024, maxFiles: 10 });
  // Defaults: 50 MiB.
  await refused(rawTarGz([{ path: 'a', data: Buffer.alloc(51 * 1024 * 1024) }]), /exceed 52428800 bytes/);
});

test('corrupt, truncated, empty and non-gzip input is a BadRequest', async () => {
  await refused(Buffer.from('hello world'), /not gzip data/);
  await refused(Buffer.alloc(0), /not gzip data/);
  await refused(zlib.gzipSync(Buffer.from('definitely not a tar file, just text padding'.repeat(20))), /corrupt tar data/);
  await refused(zlib.gzipSync(Buffer.alloc(0)), /holds no files/);
  await refused(rawTarGz([]), /holds no files/);
  await refused(rawTarGz([{ path: 'dir/', type: '5' }]), /holds no files/);
  const tgz = rawTarGz([{ path: 'index.ts', data: Buffer.alloc(5000, 'x') }]);
  await refused(tgz.subarray(0, tgz.length - 20), /corrupt gzip data/);
  const tar = zlib.gunzipSync(tgz);
  await refused(zlib.gzipSync(tar.subarray(0, 2048)), /corrupt tar data/);
  await refused(rawTarGz([{ path: 'a', data: '1' }, { path: 'a', data: '2' }]), /duplicate entry "a"/);
  await refused(rawTarGz([{ path: 'a', data: '1' }, { path: 'a/b', data: '2' }]), /lies under the file "a"/);
});

test('archives from system tar (with a pax header) extract', async () => {
  const src = writeTree(path.join(tempDir(), 'fn'), { 'index.ts': 'x', 'sub/deep/y.ts': 'y' });
  const out = path.join(tempDir(), 'a.tgz');
  const { execFileSync } = await import('node:child_process');
  try {
    execFileSync('tar', ['--format=pax', '-czf', out, '-C', path.dirname(src), 'fn']);
  } catch {
    return; // no system tar: nothing to compare against
  }
  const dest = path.join(tempDir(), 'x');
  const root = await extractArchive(fs.readFileSync(out), dest);
  assert.equal(root, path.join(dest, 'fn'));
  assert.deepEqual(await listFiles(root, { skipIgnored: false }), ['index.ts', 'sub/deep/y.ts']);
});
