// The pip side of the package cache without a server, in both installer
// confinements (bubblewrap and the plain child process): requirements
// normalization and the cache key, sharing, the read-only entry, and failures
// that leave nothing behind.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LaminaError } from '../../src/errors.js';
import { PackageCache } from '../../src/packages/cache.js';
import { planPythonPackages } from '../../src/packages/pip-plan.js';
import { hasBwrap } from '../container/helpers.js';
import { buildIndex, serveIndex, type Index } from './pypi.js';

const ID = { interpreter: 'cpython-311-linux-x86_64', version: '3.11.2', pip: '23.0.1' };
const work = mkdtempSync(path.join(os.tmpdir(), 'lamina-pipcache-'));
after(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
function reqDir(text: string): string {
  const dir = path.join(work, `fn${n++}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'requirements.txt'), text);
  return dir;
}
const plan = (text: string, id = ID, index = 'i') => planPythonPackages(reqDir(text), ['requirements.txt', 'f.py'], id, index);

function invalid(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof LaminaError, String(err));
    assert.equal(err.status, 400);
    assert.match(err.message, pattern);
    return true;
  };
}

test('requirements are normalized: spelling, order, spaces, comments and duplicates do not change the key; the rest does', async () => {
  const a = (await plan('requests==2.31.0\nattrs>=22,<24\n'))!;
  const b = (await plan('# deps\nAttrs <24 , >=22   # range\n\nRequests == 2.31.0\nrequests==2.31.0\n'))!;
  assert.equal(a.hash, b.hash);
  assert.equal(a.requirements, 'attrs<24,>=22\nrequests==2.31.0\n');
  assert.deepEqual(a.dependencies.sort(), ['attrs', 'requests']);
  assert.notEqual((await plan('requests==2.31.1\nattrs>=22,<24\n'))!.hash, a.hash);
  assert.notEqual((await plan('requests==2.31.0\nattrs>=22,<24\n', { ...ID, interpreter: 'cpython-312-linux-x86_64' }))!.hash, a.hash);
  assert.notEqual((await plan('requests==2.31.0\nattrs>=22,<24\n', ID, 'another index'))!.hash, a.hash);
  // Extras, markers and continuations are kept.
  const m = (await plan('rich[b,A] >= 1 ; python_version >= "3.8"\nx \\\n  ==1\n'))!;
  assert.equal(m.requirements, 'rich[a,b]>=1; python_version >= "3.8"\nx==1\n');
  assert.equal(await plan('# nothing\n\n'), undefined);
  assert.equal(await planPythonPackages(work, ['f.py'], ID, 'i'), undefined);
});

test('requirements that would leave the index are refused by line', async () => {
  for (const [text, re] of [
    ['ok==1\n-e git+https://x/y.git', /line 2: the option -e is not supported/],
    ['--extra-index-url http://evil/simple', /line 1: the option --extra-index-url/],
    ['-r other.txt', /the option -r/],
    ['pkg @ https://example.com/pkg.whl', /line 1: .* is a URL or a file path/],
    ['https://example.com/pkg.tar.gz', /URL or a file path/],
    ['./local/pkg', /URL or a file path/],
    ['pkg===', /not a version specifier/],
    ['pk g', /not a version specifier/],
  ] as const) {
    await assert.rejects(plan(text), invalid(re), text);
  }
});

const modes: ('plain' | 'bwrap')[] = ['plain', ...(hasBwrap() ? (['bwrap'] as const) : [])];
describe('pip installs into the cache', () => {
  let index: Index;
  before(async () => {
    buildIndex(path.join(work, 'index'), [
      { name: 'greetlib', version: '1.0.0', files: { 'greetlib/__init__.py': 'def greet(n):\n    return "hello " + n\n' } },
      { name: 'two-mods', version: '0.1', files: { 'alpha.py': 'A = 1\n', 'beta/__init__.py': 'B = 2\n' } },
    ]);
    index = await serveIndex(path.join(work, 'index'));
  });
  after(async () => index?.close());

  for (const mode of modes) {
    test(`[${mode}] one read-only entry per set, shared; the requirements' modules recorded; a failure leaves nothing`, async () => {
      const cache = await PackageCache.open(mkdtempSync(path.join(work, `data-${mode}-`)), { mode, registry: 'http://127.0.0.1:9/', pip: { indexUrl: index.url }, limits: { timeoutMs: 120_000 } });
      assert.equal((await cache.installer.mode()).mode, mode);
      const dir = reqDir('greetlib==1.0.0\ntwo_mods\n');
      const p = (await cache.planPython(dir, ['requirements.txt']))!;
      const a = await cache.acquire(p, 'one');
      a.release();
      assert.equal(a.installed, true);
      assert.equal(a.entry.ecosystem, 'pip');
      assert.equal(path.basename(a.entry.nodeModules), 'site-packages');
      assert.deepEqual(a.entry.modules, ['alpha', 'beta', 'greetlib']);
      assert.deepEqual(a.entry.packages, [{ name: 'greetlib', version: '1.0.0' }, { name: 'two-mods', version: '0.1' }]);
      assert.ok(statSync(path.join(a.entry.nodeModules, 'greetlib', '__init__.py')).mode & 0o444);
      assert.equal(statSync(path.join(a.entry.nodeModules, 'greetlib', '__init__.py')).mode & 0o222, 0, 'read-only');
      const again = await cache.acquire((await cache.planPython(reqDir('Two-Mods\ngreetlib == 1.0.0\n'), ['requirements.txt']))!, 'two');
      again.release();
      assert.equal(again.installed, false);
      assert.equal(again.entry.hash, a.entry.hash);

      const before = readdirSync(cache.root).length;
      await assert.rejects(cache.acquire((await cache.planPython(reqDir('greetlib==1.0.0\nnosuchlib>=2\n'), ['requirements.txt']))!, 'bad'), invalid(/requirement "nosuchlib>=2" cannot be installed.*pip said: .*No matching distribution found for nosuchlib>=2/));
      assert.equal(readdirSync(cache.root).length, before, 'no entry');
      assert.deepEqual(readdirSync(cache.tmpRoot), [], 'no staging');
      const gc = await cache.gc(new Set());
      assert.deepEqual(gc.removed.map((r) => r.hash), [a.entry.hash]);
    });
  }
});
