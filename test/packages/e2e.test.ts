// Package-aware deploys through real servers and real HTTP, on every tier:
// functions importing a 50-module dependency tree installed from `npm pack`
// tarballs (no network), one cache entry shared by two functions, GC, the CLI,
// and failed installs (bad script, missing tarball, limits) that leave the old
// version serving and nothing half-installed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { CLI, admin, deploy, deployRaw, invoke, startServer, testTiers, type TestServer } from '../helpers/server.js';
import { tempDir } from '../registry/helpers.js';
import { functionWithPackages, moduleTree, packFixtures, type FixturePackage } from './fixtures.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((c) => c()));

const TREE = moduleTree(50, 'tree');
const HANDLER = { 'index.mjs': "import t from 'tree0';\nexport async function handler() { return { sum: t.sum(), size: t.size() }; }" };
const EXPECTED = { sum: 1225, size: 40 };

let vendor: { dir: string; files: Map<string, string> } | undefined;
function treeVendor() {
  if (!vendor) {
    const dir = tempDir('lamina-vendor-');
    vendor = { dir, files: packFixtures(TREE, dir) };
  }
  return vendor;
}

function fn(opts: Parameters<typeof functionWithPackages>[0]): string {
  const f = functionWithPackages(opts);
  cleanups.push(f.remove);
  return f.dir;
}

const entriesOf = (s: TestServer) => readdirSync(path.join(s.dataDir, 'packages')).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
const stagingOf = (s: TestServer) => readdirSync(path.join(s.dataDir, 'packages', '.tmp'));
const installDirs = () => new Set(readdirSync(os.tmpdir()).filter((n) => n.startsWith('lamina-install-')));

async function cli(s: TestServer, ...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [CLI, ...args], { env: { ...process.env, LAMINA_URL: s.url, LAMINA_TOKEN: s.token } });
}

for (const tier of testTiers()) {
  describe(`packages [${tier}]`, () => {
    let s: TestServer;
    const manifest = tier === 'isolate' ? { sandbox: 'isolate' } : undefined;
    let first: string;
    before(async () => {
      s = await startServer({ tier });
      first = fn({ name: 'uses-tree', files: HANDLER, packages: TREE, vendorFrom: treeVendor(), manifest });
    });
    after(async () => {
      await s.stop();
    });

    test('a function importing a 50-module tree installed from tarballs answers, cold then warm', async () => {
      const v = await deploy(s, first);
      assert.equal(v.version, 1);
      const cold = await invoke(s, 'uses-tree', {});
      assert.equal(cold.status, 200, cold.text);
      assert.deepEqual(cold.body, EXPECTED);
      // The isolate tier loads an isolate at deploy (LAMINA_ISOLATE_PRELOAD): its first call is warm.
      assert.equal(cold.headers.get('x-lamina-cold-start'), tier === 'isolate' ? '0' : '1');
      const warm = await invoke(s, 'uses-tree', {});
      assert.deepEqual(warm.body, EXPECTED);
      assert.equal(warm.headers.get('x-lamina-cold-start'), '0');
      assert.equal(entriesOf(s).length, 1);
    });

    test('a second function with the same lockfile shares the one cache entry and installs nothing', async () => {
      const second = fn({ name: 'also-tree', files: HANDLER, packages: TREE, vendorFrom: treeVendor(), manifest, lockfile: false });
      copyFileSync(path.join(first, 'package-lock.json'), path.join(second, 'package-lock.json'));
      const before = entriesOf(s);
      await deploy(s, second);
      assert.deepEqual(entriesOf(s), before, 'still one entry on disk');
      const r = await invoke(s, 'also-tree', {});
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, EXPECTED);
      const list = await admin(s, 'GET', '/packages');
      assert.equal(list.status, 200, list.text);
      assert.equal(list.body.entries.length, 1);
      const e = list.body.entries[0];
      assert.equal(e.packages, 50);
      assert.ok(e.sizeBytes > 50 * 1000, `size ${e.sizeBytes}`);
      assert.deepEqual(e.usedBy.map((u: { name: string }) => u.name).sort(), ['also-tree', 'uses-tree']);
      assert.equal(list.body.totalBytes, e.sizeBytes);
      const { stdout } = await cli(s, 'packages');
      assert.match(stdout, /also-tree v1\*; uses-tree v1\*/);
      assert.match(stdout, /1 entry, [\d.]+ KB/);
    });

    test('failed installs answer 400 naming the cause, leave nothing behind, and the old version keeps serving', async () => {
      const entries = entriesOf(s);
      const installs = installDirs();
      const failing: FixturePackage = { name: 'fails-to-build', scripts: { install: 'node -e "process.exit(7)"' } };
      const bad = fn({ name: 'uses-tree', files: HANDLER, packages: [...TREE.slice(45, 48), failing], manifest, packageJson: { allowScripts: { 'fails-to-build': true } } });
      const r1 = await deployRaw(s, bad);
      assert.equal(r1.status, 400, r1.text);
      assert.equal(r1.body.error.type, 'InvalidFunction');
      assert.match(r1.body.error.message, /installing dependencies failed: the install script of "fails-to-build" failed .*exit 7/);

      const missing = fn({ name: 'uses-tree', files: HANDLER, packages: [], manifest, lockfile: false, packageJson: { dependencies: { tree0: 'file:./vendor/tree0-9.9.9.tgz' } } });
      const r2 = await deployRaw(s, missing);
      assert.equal(r2.status, 400, r2.text);
      assert.match(r2.body.error.message, /dependencies\.tree0 is "file:\.\/vendor\/tree0-9\.9\.9\.tgz", but vendor\/tree0-9\.9\.9\.tgz is not in the function directory/);

      const after = await invoke(s, 'uses-tree', {});
      assert.equal(after.status, 200, after.text);
      assert.deepEqual(after.body, EXPECTED);
      assert.equal(after.headers.get('x-lamina-version'), '1', 'the old version still serves');
      assert.deepEqual(entriesOf(s), entries, 'no new entry');
      assert.deepEqual(stagingOf(s), [], 'no staging left');
      assert.deepEqual([...installDirs()].filter((d) => !installs.has(d)), [], 'no install dir left');
    });

    if (tier === 'isolate') {
      test('a package that needs Node is refused at deploy, by name', async () => {
        const nodey: FixturePackage = { name: 'needs-fs', files: { 'index.js': "module.exports = require('fs').existsSync;" } };
        const dir = fn({ name: 'nodey', files: { 'index.mjs': "import x from 'needs-fs';\nexport const handler = () => typeof x;" }, packages: [nodey], manifest });
        const before = entriesOf(s);
        const r = await deployRaw(s, dir);
        assert.equal(r.status, 400, r.text);
        assert.match(r.body.error.message, /package "needs-fs" imports the Node built-in "fs": it cannot run in an isolate/);
        // The install itself succeeded: its entry stays (complete, unused) for a fixed redeploy, until a GC.
        const added = entriesOf(s).filter((h) => !before.includes(h));
        assert.equal(added.length, 1);
        const gc = await admin(s, 'POST', '/packages/gc');
        assert.deepEqual(gc.body.removed.map((x: { hash: string }) => x.hash), added);
        assert.deepEqual(entriesOf(s), before);
      });
    }

    test('GC removes an entry no version uses and keeps the used one', async () => {
      const small = fn({ name: 'small', files: { 'index.mjs': "import t from 'tree49';\nexport const handler = () => t.sum();" }, packages: [TREE[49]!], vendorFrom: treeVendor(), manifest });
      await deploy(s, small);
      assert.equal((await invoke(s, 'small', {})).body, 49);
      const used = entriesOf(s);
      assert.equal(used.length, 2);
      const list = (await admin(s, 'GET', '/packages')).body;
      const smallHash = list.entries.find((e: { usedBy: { name: string }[] }) => e.usedBy.some((u) => u.name === 'small')).hash;
      // Still used: GC keeps everything.
      const none = await admin(s, 'POST', '/packages/gc');
      assert.equal(none.status, 200, none.text);
      assert.deepEqual(none.body.removed, []);
      assert.equal((await admin(s, 'DELETE', '/functions/small')).status, 200);
      const { stdout } = await cli(s, 'packages', 'gc');
      assert.match(stdout, new RegExp(`removed ${smallHash.slice(0, 12)} \\([\\d.]+ KB\\)\\nremoved 1 entry, freed [\\d.]+ KB; kept 1`));
      assert.deepEqual(entriesOf(s), used.filter((h) => h !== smallHash));
      const r = await invoke(s, 'uses-tree', {});
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, EXPECTED, 'the function using the kept entry still serves');
    });
  });
}

describe('package install limits through the server', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ env: { LAMINA_INSTALL_TIMEOUT_MS: '4000', LAMINA_INSTALL_MEMORY_MB: '200', LAMINA_PACKAGE_MAX_MB: '4' } });
  });
  after(async () => {
    await s.stop();
  });

  test('past the time, memory or size limit: 400 naming the package, nothing half-installed, the old version serving', async () => {
    const ok = fn({ name: 'limited', files: { 'index.mjs': "import t from 'tree49';\nexport const handler = () => t.sum();" }, packages: [TREE[49]!], vendorFrom: treeVendor() });
    await deploy(s, ok);
    assert.equal((await invoke(s, 'limited', {})).body, 49);
    const entries = entriesOf(s);
    const cases: [FixturePackage, RegExp][] = [
      [{ name: 'builds-forever', scripts: { install: 'node -e "setTimeout(() => {}, 1e9)"' } }, /took longer than 4 s \(LAMINA_INSTALL_TIMEOUT_MS\) and was stopped; it was running the install script of "builds-forever"/],
      [{ name: 'eats-memory', scripts: { install: 'node -e "const a = []; setInterval(() => a.push(Buffer.alloc(8e6, 1)), 5)"' } }, /used more than 200 MB of memory \(LAMINA_INSTALL_MEMORY_MB\).*"eats-memory"/],
      [{ name: 'huge-package', files: { 'blob.txt': 'x'.repeat(5 * MiB) } }, /the dependencies take more than 4 MB installed \(LAMINA_PACKAGE_MAX_MB.*the largest is "huge-package"/],
    ];
    for (const [p, pattern] of cases) {
      const dir = fn({ name: 'limited', files: { 'index.mjs': `import x from '${p.name}';\nexport const handler = () => typeof x;` }, packages: [p], packageJson: { allowScripts: { [p.name]: true } } });
      const r = await deployRaw(s, dir);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.error.type, 'InvalidFunction');
      assert.match(r.body.error.message, pattern);
      const still = await invoke(s, 'limited', {});
      assert.equal(still.body, 49);
      assert.equal(still.headers.get('x-lamina-version'), '1');
    }
    assert.deepEqual(entriesOf(s), entries);
    assert.deepEqual(stagingOf(s), []);
  });

  test('lamina deploy shows the install while it runs', async () => {
    const slow: FixturePackage = { name: 'builds-slowly', scripts: { install: 'node -e "setTimeout(() => {}, 2500)"' } };
    const dir = fn({ name: 'slowdeps', files: { 'index.mjs': "import x from 'builds-slowly';\nexport const handler = () => typeof x;" }, packages: [slow], packageJson: { allowScripts: { 'builds-slowly': true } } });
    const { stdout, stderr } = await cli(s, 'deploy', dir);
    assert.match(stdout, /deployed slowdeps version 1/);
    assert.match(stderr, /installing dependencies of slowdeps: (preparing|installing|verifying|storing), \d+ s/);
  });
});
