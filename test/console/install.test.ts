// `npm install -g` of the `npm pack` tarball and of the checkout give a working
// `lamina` on PATH, from any directory. Installs go to a temp prefix; the
// tarball's dependencies come from npm's cache when it has them. Install
// scripts are skipped: they build the native modules (better-sqlite3,
// isolated-vm) that serving needs but --version and --help do not, and
// compiling them here would take minutes.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ROOT } from '../helpers/server.js';

const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function runLamina(prefix: string, cwd: string, args: string[]) {
  const bin = path.join(prefix, 'bin');
  // PATH lookup, as a user's shell does it; nothing of the checkout on it.
  return spawnSync('lamina', args, { cwd, encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${path.dirname(process.execPath)}:/usr/bin:/bin`, LAMINA_URL: '', LAMINA_TOKEN: '' } });
}

describe('npm install -g', () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'lamina-install-'));
  const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'lamina-elsewhere-'));
  after(() => {
    rmSync(work, { recursive: true, force: true });
    rmSync(elsewhere, { recursive: true, force: true });
  });

  test('of the npm pack tarball', () => {
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { filename: string; files: { path: string }[] }[];
    const files = packed[0]!.files.map((f) => f.path);
    assert.ok(files.includes('dist/cli/main.js') && files.includes('dist/console/index.html'), 'the build is shipped');
    assert.ok(files.includes('src/runtime/python/runtime.py') && files.includes('src/sandbox/isolate/host.ts'), 'sources used at run time are shipped');
    assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('node_modules/') || f.startsWith('console/')), 'nothing else');
    const prefix = path.join(work, 'prefix');
    execFileSync('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', path.join(work, packed[0]!.filename)], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    const v = runLamina(prefix, elsewhere, ['--version']);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), version);
    const h = runLamina(prefix, elsewhere, ['--help']);
    assert.equal(h.status, 0, h.stderr);
    assert.match(h.stdout, /Usage: lamina/);
    assert.match(h.stdout, /\bdev\b/);
    assert.ok(existsSync(path.join(prefix, 'lib', 'node_modules', 'lamina', 'dist', 'console', 'index.html')));
  });

  test('of the checkout', () => {
    const prefix = path.join(work, 'prefix-checkout');
    execFileSync('npm', ['install', '-g', '--prefix', prefix, '--ignore-scripts', '--no-audit', '--no-fund', ROOT], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    const v = runLamina(prefix, elsewhere, ['--version']);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), version);
    assert.match(runLamina(prefix, elsewhere, ['logs', '--help']).stdout, /--follow/);
  });
});
