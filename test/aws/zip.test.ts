// Zip extraction: contents land as plain files; limits and unsafe entries are refused.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { strToU8, zipSync } from 'fflate';
import { extractZip } from '../../src/registry/zip.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'lamina-zip-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const dest = () => path.join(tmp, `d${n++}`);
const refused = (buf: Uint8Array, re: RegExp, limits = {}) =>
  assert.rejects(extractZip(Buffer.from(buf), dest(), limits), (e: Error & { type?: string }) => {
    assert.equal(e.type, 'BadRequest');
    assert.match(e.message, re);
    return true;
  });

test('files and nested directories are extracted at the zip root', async () => {
  const d = await extractZip(Buffer.from(zipSync({ 'index.js': strToU8('a'), src: { 'app.mjs': strToU8('b') } })), dest());
  assert.equal(readFileSync(path.join(d, 'index.js'), 'utf8'), 'a');
  assert.equal(readFileSync(path.join(d, 'src/app.mjs'), 'utf8'), 'b');
});

test('limits: entries, total size, compression ratio', async () => {
  const many: Record<string, Uint8Array> = {};
  for (let i = 0; i < 11; i++) many[`f${i}.js`] = strToU8('x');
  await refused(zipSync(many), /more than 10 entries/, { maxFiles: 10 });
  await refused(zipSync({ 'a.js': new Uint8Array(3000).fill(65), 'b.js': new Uint8Array(3000).fill(66) }, { level: 0 }), /exceed 5000 bytes/, { maxBytes: 5000 });
  await refused(zipSync({ 'zeros.bin': new Uint8Array(8 * 1024 * 1024) }, { level: 9 }), /zip bomb/);
  // Random bytes do not compress: a large but honest file passes the ratio rule.
  const random = new Uint8Array(2 * 1024 * 1024).map(() => Math.floor(Math.random() * 256));
  await extractZip(Buffer.from(zipSync({ 'r.bin': random })), dest());
});

test('unsafe entries and non-zip data are refused', async () => {
  await refused(zipSync({ '../x.js': strToU8('') }), /leaves the archive root/);
  await refused(zipSync({ 'a/../../x.js': strToU8('') }), /leaves the archive root/);
  await refused(zipSync({ '/abs.js': strToU8('') }), /absolute path/);
  await refused(zipSync({ 'C:/win.js': strToU8('') }), /absolute path/);
  await refused(zipSync({ l: [strToU8('/etc/passwd'), { os: 3, attrs: (0o120777 << 16) >>> 0 }] }), /symbolic link/);
  await refused(zipSync({ dev: [strToU8(''), { os: 3, attrs: (0o020644 << 16) >>> 0 }] }), /not a regular file/);
  await refused(zipSync({}), /no files|not zip data/);
  await refused(strToU8('PK but not really a zip archive, just text'), /not zip data|corrupt/);
  const good = zipSync({ 'index.js': strToU8('exports.handler = 1;') });
  await refused(good.slice(0, good.length - 10), /corrupt/);
});
