// The install plan and cache key: what counts, what does not, and the refusals.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LaminaError } from '../../src/errors.js';
import { planPackages } from '../../src/packages/plan.js';
import { listFiles } from '../../src/registry/files.js';
import { fnDir } from '../registry/helpers.js';

const RT = { npmVersion: '11.0.0', node: 'node-abi115-linux-x64' };

async function plan(name: string, files: Record<string, string>, rt = RT) {
  const dir = fnDir(name, files);
  return planPackages(dir, await listFiles(dir, { skipIgnored: true }), rt);
}

const lock = (root: string, deps: Record<string, string>, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    name: root,
    version: '3.1.4',
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: root, version: '3.1.4', dependencies: deps },
      ...Object.fromEntries(Object.entries(deps).map(([n, spec]) => [`node_modules/${n}`, { version: '1.0.0', resolved: spec.startsWith('file:') ? `file:${spec.slice(5).replace(/^\.\//, '')}` : `https://registry.npmjs.org/${n}/-/${n}-1.0.0.tgz`, integrity: 'sha512-x' }])),
      ...extra,
    },
  });

test('no package.json, or one without dependencies: no plan (the code is bundled as before)', async () => {
  assert.equal(await plan('a', { 'index.js': '' }), undefined);
  assert.equal(await plan('b', { 'index.js': '', 'package.json': '{"type":"module","devDependencies":{"x":"1"}}' }), undefined);
});

test('the key ignores the function\'s own name and version, and follows the lockfile and tarball bytes', async () => {
  const deps = { x: 'file:./vendor/x-1.0.0.tgz', left: '^1.2.0' };
  const files = (root: string, tgz = 'tarball-bytes') => ({
    'index.js': '',
    'package.json': JSON.stringify({ name: root, version: root === 'one' ? '1.0.0' : '9.9.9', description: root, dependencies: deps }),
    'package-lock.json': lock(root, deps),
    'vendor/x-1.0.0.tgz': tgz,
  });
  const a = await plan('one', files('one'));
  const b = await plan('two', files('two'));
  assert.ok(a && b);
  assert.equal(a.hash, b.hash, 'two functions with the same dependencies share a key');
  assert.deepEqual(a.dependencies, ['x', 'left']);
  assert.deepEqual(a.files.map((f) => f.rel), ['vendor/x-1.0.0.tgz']);
  assert.equal(a.packageJson.name, 'lamina-packages');
  assert.equal((a.lockfile!.packages as Record<string, { name: string }>)['']!.name, 'lamina-packages');
  assert.notEqual((await plan('three', files('three', 'other bytes')))!.hash, a.hash, 'tarball content is part of the key');
  // With a lockfile the npm version does not matter; without one it does.
  assert.equal((await plan('four', files('one'), { ...RT, npmVersion: '10.0.0' }))!.hash, a.hash);
  const noLock = { 'index.js': '', 'package.json': JSON.stringify({ dependencies: { left: '^1.2.0' } }) };
  assert.notEqual((await plan('five', noLock))!.hash, (await plan('six', noLock, { ...RT, npmVersion: '10.0.0' }))!.hash);
  assert.notEqual((await plan('seven', noLock, { ...RT, node: 'node-abi127-linux-x64' }))!.hash, (await plan('eight', noLock))!.hash, 'the Node ABI is part of the key');
  // allowScripts changes what an install does.
  const approved = { 'index.js': '', 'package.json': JSON.stringify({ dependencies: { left: '^1.2.0' }, allowScripts: { left: true } }) };
  assert.notEqual((await plan('nine', approved))!.hash, (await plan('ten', noLock))!.hash);
});

test('bad dependency declarations are refused with the field named', async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ 'package.json': '{"dependencies": {' }, /package\.json: invalid JSON/],
    [{ 'package.json': '{"dependencies": []}' }, /"dependencies" must be an object/],
    [{ 'package.json': '{"dependencies": {"x": 1}}' }, /dependencies\.x must be a version range string/],
    [{ 'package.json': '{"dependencies": {"x": "file:../outside.tgz"}}' }, /dependencies\.x is "file:\.\.\/outside\.tgz": a file: dependency must be a relative path inside the function directory/],
    [{ 'package.json': '{"dependencies": {"x": "file:/etc/passwd"}}' }, /must be a relative path inside the function directory/],
    [{ 'package.json': '{"dependencies": {"x": "file:vendor/x.tgz"}}' }, /vendor\/x\.tgz is not in the function directory/],
    [{ 'package.json': '{"dependencies": {"x": "file:lib/x"}}', 'lib/x/package.json': '{}' }, /a directory: only file: tarballs are supported \(make one with `npm pack`/],
    [{ 'package.json': '{"dependencies": {"x": "git+https://github.com/a/b.git"}}' }, /installs from the package registry and file: tarballs only/],
    [{ 'package.json': '{"dependencies": {"x": "someone/repo"}}' }, /installs from the package registry and file: tarballs only/],
    [{ 'package.json': '{"dependencies": {"x": "link:../x"}}' }, /links and workspaces are not supported/],
    [{ 'package.json': '{"dependencies": {"x": "1"}}', 'package-lock.json': '{"lockfileVersion": 1, "dependencies": {}}' }, /lockfileVersion 1 is too old/],
    [{ 'package.json': '{"dependencies": {"x": "1"}}', 'package-lock.json': lock('r', { x: '1' }, { 'node_modules/y': { link: true, resolved: 'lib/y' } }) }, /node_modules\/y is a link/],
  ];
  for (const [files, pattern] of cases) {
    await assert.rejects(plan('bad', { 'index.js': '', ...files }), (err: unknown) => {
      assert.ok(err instanceof LaminaError && err.type === 'InvalidFunction', String(err));
      assert.match(err.message, pattern);
      return true;
    });
  }
});
