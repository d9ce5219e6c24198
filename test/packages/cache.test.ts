// The package cache and its installer, for real (npm in the install sandbox),
// without a server: content-addressed entries, sharing, GC, the registry-only
// network, and every failure leaving nothing behind with a message naming it.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { LaminaError } from '../../src/errors.js';
import { PackageCache } from '../../src/packages/cache.js';
import { PackageViews } from '../../src/sandbox/packages.js';
import type { InstallerOptions } from '../../src/packages/installer.js';
import { listFiles } from '../../src/registry/files.js';
import { tempDir } from '../registry/helpers.js';
import { functionWithPackages, moduleTree, packFixtures, type FixturePackage } from './fixtures.js';
import { startFakeRegistry, type FakeRegistry } from './registry-server.js';

const MiB = 1024 * 1024;
const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((c) => c()));

function fn(opts: Parameters<typeof functionWithPackages>[0]): string {
  const f = functionWithPackages(opts);
  cleanups.push(f.remove);
  return f.dir;
}

async function open(opts: InstallerOptions = {}): Promise<PackageCache> {
  return PackageCache.open(tempDir('lamina-pkgcache-'), { registry: 'http://127.0.0.1:9/', ...opts });
}

async function planOf(cache: PackageCache, dir: string) {
  const p = await cache.plan(dir, await listFiles(dir, { skipIgnored: true }));
  assert.ok(p, 'a plan');
  return p;
}

const entries = (cache: PackageCache) => readdirSync(cache.root).filter((n) => /^[0-9a-f]{64}$/.test(n));
const installDirs = () => new Set(readdirSync(os.tmpdir()).filter((n) => n.startsWith('lamina-install-')));

function refusal(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof LaminaError, String(err));
    assert.equal(err.type, 'InvalidFunction');
    assert.equal(err.status, 400);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('package cache', () => {
  const tree = moduleTree(12, 'ct');
  let vendor: { dir: string; files: Map<string, string> };
  before(() => {
    const dir = tempDir('lamina-vendor-');
    vendor = { dir, files: packFixtures(tree, dir) };
  });

  test('file: tarballs install into a read-only entry keyed by the lockfile; equal sets share it; concurrent deploys share one install', async () => {
    const cache = await open();
    const a = fn({ name: 'fa', files: { 'index.js': '' }, packages: tree, vendorFrom: vendor });
    const b = fn({ name: 'fb', files: { 'index.js': '' }, packages: tree, vendorFrom: vendor });
    const pa = await planOf(cache, a);
    const pb = await planOf(cache, b);
    assert.equal(pa.hash, pb.hash, 'two functions with the same lockfile have one key');

    const [x, y] = await Promise.all([cache.acquire(pa, 'fa'), cache.acquire(pb, 'fb')]);
    assert.equal(x.entry.hash, y.entry.hash);
    assert.equal([x.installed, y.installed].filter(Boolean).length, 1, 'one install for both');
    assert.deepEqual(entries(cache), [pa.hash], 'one entry on disk');
    const e = x.entry;
    assert.equal(e.packages.length, 12);
    assert.ok(e.sizeBytes > 12 * 500 && e.files >= 24, `size ${e.sizeBytes}, files ${e.files}`);
    assert.equal(e.lockfileProvided, true);
    // Read-only: directories 0555, files 0444.
    assert.equal(statSync(e.nodeModules).mode & 0o777, 0o555);
    assert.equal(statSync(path.join(e.nodeModules, 'ct0', 'index.js')).mode & 0o777, 0o444);
    assert.match(readFileSync(path.join(e.nodeModules, 'ct0', 'index.js'), 'utf8'), /require\('ct1'\)/);
    x.release();
    y.release();

    const again = await cache.acquire(pa, 'fc');
    assert.equal(again.installed, false);
    assert.equal(again.installMs, 0, 'a cache hit installs nothing');
    again.release();
    assert.deepEqual(readdirSync(cache.tmpRoot), [], 'no staging left');
  });

  test('GC removes entries no version uses, keeps used and pinned ones', async () => {
    const cache = await open();
    const one = fn({ name: 'g1', files: { 'index.js': '' }, packages: tree.slice(10), vendorFrom: vendor, lockfile: false });
    const two = fn({ name: 'g2', files: { 'index.js': '' }, packages: tree.slice(11), vendorFrom: vendor, lockfile: false });
    const three = fn({ name: 'g3', files: { 'index.js': '' }, packages: [tree[9]!], vendorFrom: vendor, lockfile: false });
    const [p1, p2, p3] = [await planOf(cache, one), await planOf(cache, two), await planOf(cache, three)];
    for (const p of [p1, p2]) (await cache.acquire(p, 'g')).release();
    const pinned = await cache.acquire(p3, 'g3'); // a deploy that has not committed yet
    assert.equal(entries(cache).length, 3);
    // A sandbox view of the entry GC removes: its hard links must go too, or the bytes stay in use.
    const views = new PackageViews(tempDir('lamina-views-'));
    const view = await views.nodeModules(p2.hash, cache.nodeModulesFor(p2.hash));
    assert.ok(existsSync(path.join(view, 'ct11', 'index.js')));
    assert.equal(statSync(path.join(view, 'ct11', 'index.js')).ino, statSync(path.join(cache.nodeModulesFor(p2.hash), 'ct11', 'index.js')).ino, 'hard-linked');
    assert.ok(existsSync(path.join(cache.dirFor(p1.hash), 'package-lock.json')), 'without a lockfile, the one npm produced is kept');

    const r = await cache.gc(new Set([p1.hash]));
    assert.deepEqual(r.removed.map((x) => x.hash), [p2.hash]);
    assert.ok(r.freedBytes > 0);
    assert.equal(r.kept, 2);
    assert.deepEqual(entries(cache).sort(), [p1.hash, p3.hash].sort());
    assert.ok(!existsSync(view), 'the view went with the entry');
    pinned.release();
    const r2 = await cache.gc(new Set([p1.hash]));
    assert.deepEqual(r2.removed.map((x) => x.hash), [p3.hash], 'unpinned, it goes');
    assert.deepEqual(entries(cache), [p1.hash]);
    assert.deepEqual(readdirSync(cache.tmpRoot), []);
  });

  test('failed installs name the cause and leave nothing behind', async () => {
    const cache = await open({ limits: { timeoutMs: 4000, memoryMb: 200, maxBytes: 4 * MiB } });
    const bad = (name: string, p: FixturePackage) => fn({ name, files: { 'index.js': '' }, packages: [p], packageJson: { allowScripts: { [p.name]: true } } });
    const cases: [string, FixturePackage, RegExp][] = [
      ['script', { name: 'fails-to-build', scripts: { install: 'node -e "process.exit(3)"' } }, /the install script of "fails-to-build" failed \(sh -c node -e "process\.exit\(3\)"\), exit 3/],
      ['slow', { name: 'builds-forever', scripts: { install: 'node -e "setTimeout(() => {}, 1e9)"' } }, /took longer than 4 s \(LAMINA_INSTALL_TIMEOUT_MS\) and was stopped; it was running the install script of "builds-forever"/],
      ['greedy', { name: 'eats-memory', scripts: { install: 'node -e "const a = []; setInterval(() => a.push(Buffer.alloc(8e6, 1)), 5)"' } }, /used more than 200 MB of memory \(LAMINA_INSTALL_MEMORY_MB\) and was stopped; it was running the install script of "eats-memory"/],
      ['huge', { name: 'huge-package', files: { 'blob.txt': 'x'.repeat(6 * MiB) } }, /the dependencies take more than 4 MB installed \(LAMINA_PACKAGE_MAX_MB; [\d.]+ MB when stopped\); the largest is "huge-package"/],
    ];
    const before = installDirs();
    for (const [name, p, pattern] of cases) {
      const plan = await planOf(cache, bad(name, p));
      await assert.rejects(cache.acquire(plan, name), refusal(pattern));
    }
    assert.deepEqual(entries(cache), [], 'no entry');
    assert.deepEqual(readdirSync(cache.tmpRoot), [], 'no staging');
    assert.deepEqual([...installDirs()].filter((d) => !before.has(d)), [], 'no install dir');
  });
});

describe('package cache with a registry', () => {
  let registry: FakeRegistry;
  let bystander: http.Server;
  let bystanderHits = 0;
  before(async () => {
    // A host service the install must not reach (only the registry is allowed).
    bystander = http.createServer((_q, r) => {
      bystanderHits++;
      r.end('secret');
    });
    await new Promise<void>((resolve) => bystander.listen(0, '127.0.0.1', resolve));
    const port = (bystander.address() as AddressInfo).port;
    const secret = path.join(os.tmpdir(), `lamina-test-secret-${process.pid}`);
    writeFileSync(secret, 'server secret', { mode: 0o644 });
    cleanups.push(() => rmSync(secret, { force: true }));
    const probe = [
      "const fs = require('fs'), http = require('http');",
      'const out = { env: Object.keys(process.env).sort() };',
      `try { out.secret = fs.readFileSync(${JSON.stringify(secret)}, 'utf8'); } catch (e) { out.secret = e.code; }`,
      "try { fs.readdirSync('/root'); out.root = 'listed'; } catch (e) { out.root = e.code; }",
      `http.get('http://127.0.0.1:${port}/', (r) => { out.bystander = r.statusCode; done(); }).on('error', (e) => { out.bystander = e.code; done(); });`,
      "function done() { fs.writeFileSync('probe.json', JSON.stringify(out)); }",
    ].join('\n');
    registry = await startFakeRegistry(
      [
        { name: 'reg-lib', version: '1.2.0', files: { 'index.js': "module.exports = () => 'from the registry';" } },
        { name: 'reg-app', version: '2.0.0', dependencies: { 'reg-lib': '^1.0.0' } },
        { name: 'reg-probe', version: '1.0.0', scripts: { install: 'node probe.js' }, files: { 'probe.js': probe } },
      ],
      tempDir('lamina-registry-'),
    );
  });
  after(async () => {
    await registry.close();
    await new Promise<void>((resolve) => bystander.close(() => resolve()));
  });

  test('resolves through the registry-only proxy and keeps the lockfile npm produced', async () => {
    const cache = await open({ registry: registry.url });
    const dir = fn({ name: 'regfn', files: { 'index.js': '' }, packages: [], lockfile: false, packageJson: { dependencies: { 'reg-app': '^2.0.0' } } });
    const got = await cache.acquire(await planOf(cache, dir), 'regfn');
    got.release();
    assert.deepEqual(got.entry.packages.map((p) => `${p.name}@${p.version}`), ['reg-app@2.0.0', 'reg-lib@1.2.0']);
    assert.ok(registry.requests.some((r) => r.startsWith('GET /reg-lib/-/')), registry.requests.join('\n'));
    const lock = JSON.parse(readFileSync(path.join(got.entry.dir, 'package-lock.json'), 'utf8'));
    assert.equal(lock.packages['node_modules/reg-lib'].version, '1.2.0');
  });

  test('a dependency that does not exist is a 400 naming it', async () => {
    const cache = await open({ registry: registry.url });
    const dir = fn({ name: 'nofn', files: { 'index.js': '' }, packages: [], lockfile: false, packageJson: { dependencies: { 'no-such-package': '^1.0.0' } } });
    await assert.rejects(cache.acquire(await planOf(cache, dir), 'nofn'), refusal(/dependency "no-such-package" does not exist in the registry \(http:\/\/127\.0\.0\.1:\d+\/\); npm said: npm error code E404/));
    assert.deepEqual(entries(cache), []);
  });

  test('install scripts run confined: no host network, no server files, an empty environment', async () => {
    const cache = await open({ registry: registry.url });
    const dir = fn({ name: 'probefn', files: { 'index.js': '' }, packages: [], lockfile: false, packageJson: { dependencies: { 'reg-probe': '1.0.0' }, allowScripts: { 'reg-probe': true } } });
    const got = await cache.acquire(await planOf(cache, dir), 'probefn');
    got.release();
    const probe = JSON.parse(readFileSync(path.join(got.entry.nodeModules, 'reg-probe', 'probe.json'), 'utf8'));
    assert.equal(bystanderHits, 0, 'the host service was not reached');
    assert.match(String(probe.bystander), /ECONNREFUSED|ENETUNREACH|EACCES/);
    if ((await cache.installer.mode()).mode === 'bwrap') {
      assert.equal(probe.secret, 'ENOENT', 'the host /tmp is not visible');
      assert.equal(probe.root, 'ENOENT', '/root is not visible');
    }
    // npm's own variables only: nothing of the server's environment (tokens, LAMINA_*).
    assert.ok(!probe.env.some((k: string) => /^LAMINA_|TOKEN|SECRET|PASSWORD/i.test(k)), probe.env.join(','));
    assert.ok(probe.env.includes('HOME') && probe.env.length < 60, probe.env.join(','));
  });
});
