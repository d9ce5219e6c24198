// Python's import cache (SOCK's lesson, as the npm preload does for Node): a
// pre-started container runtime imports a version's requirements, with the
// function's environment, before `load`; the function then finds them imported.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PYTHON_PRELOAD_FILE } from '../../src/registry/compile.js';
import type { LoadSpec, Sandbox } from '../../src/sandbox/types.js';
import { call, hasBwrap, openBackend, type Harness } from '../container/helpers.js';

const DEFAULT_F = 'import sys\nWAS_IMPORTED = "stamplib" in sys.modules\nimport stamplib\n\ndef f(event):\n    return {"preloaded": WAS_IMPORTED, "greeting": stamplib.GREETING, "path_ok": stamplib.__file__.startswith("/var/packages/")}\n';

describe('python preload [container]', { skip: !hasBwrap() && 'bubblewrap is not installed' }, () => {
  let h: Harness;
  let work: string;
  const sandboxes: Sandbox[] = [];

  /** A code dir (f.py + the preload list) and a site-packages dir standing in for a cache entry. */
  function version(modules: string[], packages: Record<string, string>, source = DEFAULT_F): LoadSpec {
    const dir = mkdtempSync(path.join(work, 'v-'));
    const code = path.join(dir, 'code');
    const site = path.join(dir, 'entry', 'site-packages');
    mkdirSync(code, { recursive: true });
    mkdirSync(site, { recursive: true });
    for (const [rel, text] of Object.entries(packages)) {
      mkdirSync(path.dirname(path.join(site, rel)), { recursive: true });
      writeFileSync(path.join(site, rel), text);
    }
    writeFileSync(path.join(code, 'f.py'), source);
    writeFileSync(path.join(code, PYTHON_PRELOAD_FILE), JSON.stringify({ modules }));
    for (const d of [dir, code, path.join(dir, 'entry'), site]) chmodSync(d, 0o755);
    return { functionName: 'pre', functionVersion: 1, codeDir: code, entry: 'f.py', handler: 'f', env: { GREETING: 'from the manifest' }, memoryMb: 128, timeoutMs: 10000, network: false, packages: { hash: path.basename(dir).padEnd(64, '0'), dir: site } };
  }

  before(async () => {
    const opened = await openBackend();
    if (typeof opened === 'string') throw new Error(opened);
    h = opened;
    work = mkdtempSync(path.join(os.tmpdir(), 'lamina-pypre-'));
    chmodSync(work, 0o755);
  });
  after(async () => {
    await Promise.all(sandboxes.map((s) => s.destroy()));
    await h?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const create = async () => {
    const sb = await h.backend.create({ runtime: 'python', memoryMb: 128, network: false });
    sandboxes.push(sb);
    return sb;
  };
  const STAMP = { 'stamplib/__init__.py': 'import os\nGREETING = os.environ.get("GREETING")\n' };

  test('a preloaded runtime has imported the requirements (with the manifest env) before the function loads', async () => {
    const spec = version(['stamplib'], STAMP);
    const sb = await create();
    assert.ok(sb.preload, 'the container tier preloads');
    await sb.preload!(spec);
    await sb.load(spec);
    const r = await call(sb, {});
    assert.equal(r.ok, true, JSON.stringify(r.error));
    assert.deepEqual(r.value, { preloaded: true, greeting: 'from the manifest', path_ok: true });

    // Without preloading the same version imports them at load.
    const cold = await create();
    await cold.load(spec);
    assert.deepEqual((await call(cold, {})).value, { preloaded: false, greeting: 'from the manifest', path_ok: true });
  });

  test('a WSGI app built on an installed (preloaded) framework serves an HTTP call inside the container', async () => {
    const framework = {
      'tinyweb/__init__.py': [
        'class App:',
        '    def __init__(self):',
        '        self.routes = {}',
        '    def route(self, path):',
        '        def deco(fn):',
        '            self.routes[path] = fn',
        '            return fn',
        '        return deco',
        '    def __call__(self, environ, start_response):',
        '        fn = self.routes.get(environ["PATH_INFO"])',
        '        if fn is None:',
        '            start_response("404 Not Found", [("Content-Type", "text/plain")])',
        '            return [b"no route"]',
        '        status, body = fn(environ)',
        '        start_response(status, [("Content-Type", "text/plain"), ("Set-Cookie", "s=1"), ("Set-Cookie", "t=2")])',
        '        return [body.encode()]',
        '',
      ].join('\n'),
    };
    const app = 'from tinyweb import App\napp = App()\n\n@app.route("/hi")\ndef hi(environ):\n    return "200 OK", "hi from " + environ["SCRIPT_NAME"] + " " + environ["QUERY_STRING"]\n';
    const spec = { ...version(['tinyweb'], framework, app), handler: 'app' };
    const sb = await create();
    await sb.preload!(spec);
    await sb.load(spec);
    const event = { version: '2.0', rawPath: '/hi', rawQueryString: 'x=1', headers: { host: 'h' }, requestContext: { http: { method: 'GET', path: '/hi', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1' } }, isBase64Encoded: false };
    const r = await sb.invoke({ requestId: 'w1', event, http: { mode: 'wsgi', url: 'http://h/run/pre/hi?x=1', basePath: '/run/pre' }, deadlineMs: Date.now() + 10000, coldStart: true });
    assert.equal(r.ok, true, JSON.stringify(r.error));
    assert.deepEqual(r.value, { statusCode: 200, headers: { 'content-type': 'text/plain' }, cookies: ['s=1', 't=2'], body: 'hi from /run/pre x=1', isBase64Encoded: false });
  });

  test('a requirement that fails to import fails the preload (the sandbox is dropped), as a load would', async () => {
    const spec = version(['stamplib', 'brokenlib'], { ...STAMP, 'brokenlib.py': 'raise RuntimeError("no config")\n' });
    const sb = await create();
    await assert.rejects(sb.preload!(spec), /a dependency failed to preload: no config/);
    assert.equal(sb.alive, false);
  });
});
