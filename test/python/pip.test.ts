// pip requirements end to end on the container tier: an OpenLambda directory
// (f.py + ol.yaml + requirements.txt) deploys unchanged and works; equal
// requirements share one cache entry; a requirement that cannot be installed
// fails the deploy with 400 naming it while the previous version keeps serving;
// bad ol.yaml keys give 400; the installed packages are read-only; GC covers
// Python entries. The index is a PEP 503 tree on loopback (pypi.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { admin, deploy, deployRaw, invoke, makeFunction, startServer, testTiers, type TestServer } from '../helpers/server.js';
import { buildIndex, serveIndex, type Index } from './pypi.js';

describe('python requirements.txt [container]', { skip: !testTiers().includes('container') && 'container tier not under test' }, () => {
  let s: TestServer;
  let index: Index;
  const work = mkdtempSync(path.join(os.tmpdir(), 'lamina-pip-'));
  const dirs: string[] = [];
  const fn = (name: string, files: Record<string, string>) => {
    const dir = makeFunction(files, undefined, name);
    dirs.push(path.dirname(dir));
    return dir;
  };

  before(async () => {
    buildIndex(path.join(work, 'index'), [
      { name: 'greetlib', version: '1.0.0', files: { 'greetlib/__init__.py': 'VERSION = "1.0.0"\ndef greet(n):\n    return "hello " + n\n' } },
      { name: 'greetlib', version: '2.0.0', files: { 'greetlib/__init__.py': 'VERSION = "2.0.0"\ndef greet(n):\n    return "HELLO " + n\n' } },
      { name: 'Shout_Lib', version: '0.3', requires: ['greetlib>=1,<2'], files: { 'shout.py': 'import greetlib\ndef shout(n):\n    return greetlib.greet(n).upper() + "!"\n' } },
    ]);
    index = await serveIndex(path.join(work, 'index'));
    s = await startServer({ tier: 'container', env: { LAMINA_PIP_INDEX_URL: index.url } });
  });
  after(async () => {
    await s?.stop();
    await index?.close();
    rmSync(work, { recursive: true, force: true });
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const OL_F = 'import os\nimport greetlib\n\ndef f(event):\n    return {"greeting": greetlib.greet(event.get("who", "L0")), "version": greetlib.VERSION, "mode": os.environ.get("MODE")}\n';
  const OL_YAML = 'triggers:\n  http:\n    - method: POST\n    - method: GET\nenvironment:\n  MODE: "ol"\nlimits:\n  mem_mb: 128\n  runtime_sec: 10\n  procs: 32\n';

  test('an OpenLambda directory (f.py + ol.yaml + requirements.txt) deploys unchanged and works; names are case-sensitive', async () => {
    const dir = fn('L0', { 'f.py': OL_F, 'ol.yaml': OL_YAML, 'requirements.txt': 'greetlib==1.0.0\n' });
    const d = await deploy(s, dir, 'L0');
    assert.equal(d.version, 1);
    const r = await invoke(s, 'L0', { who: 'ol' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { greeting: 'hello ol', version: '1.0.0', mode: 'ol' });
    // ol.yaml's method list applies; another case is another function.
    assert.equal((await invoke(s, 'L0', {}, { method: 'PUT' })).status, 405);
    assert.equal((await invoke(s, 'l0', {})).status, 404);
    // Dots are allowed in names and never make paths: "a..b" is just a name.
    await deploy(s, fn('a..b', { 'f.py': 'def f(event):\n    return "dots"\n' }), 'a..b');
    assert.equal((await invoke(s, 'a..b', {})).body, 'dots');
    assert.equal((await admin(s, 'PUT', '/functions/..', Buffer.from('x') as unknown as BodyInit, 'application/gzip')).status >= 400, true);
    const info = await admin(s, 'GET', '/functions/L0');
    assert.deepEqual([info.body.manifest.runtime, info.body.manifest.env, info.body.manifest.http.methods, info.body.manifest.timeoutMs, info.body.manifest.processes], ['python', { MODE: 'ol' }, ['POST', 'GET'], 10000, 32]);
  });

  test('equal requirements (other spelling, order, comments) share one cache entry; ranges and dependencies resolve', async () => {
    await deploy(s, fn('L1', { 'f.py': OL_F, 'requirements.txt': '# same set, other spelling\nGreetLib == 1.0.0   \n\n' }), 'L1');
    assert.equal((await invoke(s, 'L1', { who: 'x' })).body.greeting, 'hello x');
    const shout = 'import shout\ndef f(event):\n    return shout.shout("ol")\n';
    await deploy(s, fn('shouter', { 'f.py': shout, 'requirements.txt': 'shout-lib>=0.1\n' }), 'shouter');
    assert.equal((await invoke(s, 'shouter', {})).body, 'HELLO OL!');
    const p = await admin(s, 'GET', '/packages');
    const pip = p.body.entries.filter((e: { ecosystem: string }) => e.ecosystem === 'pip');
    assert.equal(pip.length, 2, JSON.stringify(p.body.entries));
    const greet = pip.find((e: { dependencies: string[] }) => e.dependencies.includes('greetlib'));
    assert.deepEqual(greet.usedBy.map((u: { name: string }) => u.name).sort(), ['L0', 'L1']);
    const sh = pip.find((e: { dependencies: string[] }) => e.dependencies.includes('shout-lib'));
    assert.equal(sh.packages, 2); // shout-lib and the greetlib 1.x it requires
    assert.match(JSON.stringify(p.body.installer.pip), /127\.0\.0\.1/);
    // pip ran in the same sandbox as npm installs (bubblewrap is installed wherever the container tier runs).
    assert.equal(p.body.installer.mode, 'bwrap');
  });

  test('a requirement that cannot be installed: 400 naming it and pip\'s message; the previous version keeps serving', async () => {
    const missing = await deployRaw(s, fn('L0', { 'f.py': OL_F, 'ol.yaml': OL_YAML, 'requirements.txt': 'greetlib==1.0.0\nnosuchlib==1.0\n' }), 'L0');
    assert.equal(missing.status, 400, missing.text);
    assert.equal(missing.body.error.type, 'InvalidFunction');
    assert.match(missing.body.error.message, /requirement "nosuchlib==1\.0"/);
    assert.match(missing.body.error.message, /pip said: .*No matching distribution found for nosuchlib==1\.0/);
    const noVersion = await deployRaw(s, fn('L0', { 'f.py': OL_F, 'requirements.txt': 'greetlib==9.9\n' }), 'L0');
    assert.equal(noVersion.status, 400);
    assert.match(noVersion.body.error.message, /requirement "greetlib==9\.9".*it has 1\.0\.0, 2\.0\.0/);
    // Options that would change where packages come from are refused before pip runs.
    for (const bad of ['--index-url http://evil/simple\ngreetlib', 'git+https://example.com/x.git', 'greetlib @ https://example.com/g.whl', '-e .', '../local']) {
      const r = await deployRaw(s, fn('L0', { 'f.py': OL_F, 'requirements.txt': bad + '\n' }), 'L0');
      assert.equal(r.status, 400, bad);
      assert.match(r.body.error.message, /^requirements\.txt: line 1/, bad);
    }
    const r = await invoke(s, 'L0', { who: 'still' });
    assert.equal(r.status, 200);
    assert.equal(r.body.greeting, 'hello still');
    assert.equal((await admin(s, 'GET', '/functions/L0')).body.version, 1);
    // A new range picks the newest matching version.
    await deploy(s, fn('L0', { 'f.py': OL_F, 'requirements.txt': 'greetlib>=1\n' }), 'L0');
    assert.equal((await invoke(s, 'L0', { who: 'v2' })).body.greeting, 'HELLO v2');
  });

  test('bad ol.yaml keys give 400 naming them', async () => {
    const r = await deployRaw(s, fn('cfg', { 'f.py': 'def f(e):\n    return 1\n', 'ol.yaml': 'triggers:\n  http:\n    - method: GET\n  kafka: []\nmemory: 5\n' }), 'cfg');
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /ol\.yaml: unknown key "memory"/);
    const r2 = await deployRaw(s, fn('cfg', { 'f.py': 'def f(e):\n    return 1\n', 'ol.yaml': 'limits:\n  mem_mb: 10\n' }), 'cfg');
    assert.equal(r2.status, 400);
    assert.match(r2.body.error.message, /^ol\.yaml \(read as lamina\.json fields\): "memoryMb" must be/);
  });

  test('installed packages are read-only to the function', async () => {
    const code = 'import greetlib, os\ndef f(event):\n    p = os.path.join(os.path.dirname(greetlib.__file__), "evil.py")\n    try:\n        open(p, "w").write("x")\n        return "wrote"\n    except OSError as e:\n        return type(e).__name__\n';
    await deploy(s, fn('ro', { 'f.py': code, 'requirements.txt': 'greetlib==1.0.0\n' }), 'ro');
    const r = await invoke(s, 'ro', {});
    assert.equal(r.status, 200, r.text);
    assert.match(r.body, /^(PermissionError|OSError)$/);
  });

  test('GC removes Python entries no stored version uses', async () => {
    for (const name of ['L1', 'shouter', 'ro']) assert.equal((await admin(s, 'DELETE', `/functions/${name}`)).status < 300, true);
    const before = (await admin(s, 'GET', '/packages')).body.entries.filter((e: { ecosystem: string }) => e.ecosystem === 'pip').length;
    const gc = await admin(s, 'POST', '/packages/gc', JSON.stringify({ keep: 'current' }), 'application/json');
    assert.equal(gc.status, 200, gc.text);
    const left = (await admin(s, 'GET', '/packages')).body.entries.filter((e: { ecosystem: string }) => e.ecosystem === 'pip');
    // L0's current version (greetlib>=1) stays; the shout-lib set and L0's superseded greetlib==1.0.0 set go.
    assert.equal(left.length, 1, JSON.stringify(left));
    assert.ok(gc.body.removed.length >= before - 1 && gc.body.removed.length >= 1, gc.text);
    assert.equal((await invoke(s, 'L0', { who: 'after gc' })).body.greeting, 'HELLO after gc');
  });
});
