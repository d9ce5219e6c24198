import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LaminaError } from '../../src/errors.js';
import { parseManifest, validateFunctionName } from '../../src/registry/manifest.js';
import { HTTP_METHODS } from '../../src/registry/types.js';

const nodeCtx = { dirName: 'hello', files: ['index.ts', 'lib/util.ts'] };

/** Asserts an InvalidFunction whose message contains every fragment. */
function rejects(raw: unknown, fragments: string[], ctx = nodeCtx): void {
  assert.throws(
    () => parseManifest(raw, ctx),
    (err: unknown) => {
      assert.ok(err instanceof LaminaError, `expected LaminaError, got ${String(err)}`);
      assert.equal(err.type, 'InvalidFunction');
      assert.equal(err.status, 400);
      for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
      return true;
    },
  );
}

test('defaults fill every field', () => {
  assert.deepEqual(parseManifest({}, nodeCtx), {
    name: 'hello',
    runtime: 'node',
    entry: 'index.ts',
    handler: 'handler',
    memoryMb: 128,
    timeoutMs: 30000,
    concurrency: 100,
    instanceConcurrency: 1,
    sandbox: 'auto',
    env: {},
    network: false,
    http: { methods: [...HTTP_METHODS], event: 'json', auth: 'none' },
  });
});

test('default node entry is the first of index.ts, index.mts, index.js, index.mjs', () => {
  assert.equal(parseManifest({}, { dirName: 'a', files: ['index.mjs', 'index.js'] }).entry, 'index.js');
  assert.equal(parseManifest({}, { dirName: 'a', files: ['index.mjs', 'index.mts'] }).entry, 'index.mts');
  assert.equal(parseManifest({}, { dirName: 'a', files: ['index.mjs'] }).entry, 'index.mjs');
});

test('python defaults: f.py with handler f, else main.py/handler.py with handler "handler"', () => {
  const f = parseManifest({ runtime: 'python' }, { dirName: 'py', files: ['f.py', 'main.py'] });
  assert.equal(f.entry, 'f.py');
  assert.equal(f.handler, 'f');
  const m = parseManifest({ runtime: 'python' }, { dirName: 'py', files: ['handler.py', 'main.py'] });
  assert.equal(m.entry, 'main.py');
  assert.equal(m.handler, 'handler');
  const h = parseManifest({ runtime: 'python', handler: 'run' }, { dirName: 'py', files: ['f.py'] });
  assert.equal(h.handler, 'run');
  rejects({ runtime: 'python' }, ['no entry file', 'f.py, main.py, handler.py'], { dirName: 'py', files: ['index.ts'] });
  rejects({ runtime: 'python', sandbox: 'isolate' }, ['"sandbox"', 'isolate'], { dirName: 'py', files: ['f.py'] });
});

test('explicit values are kept; methods are upper-cased and deduplicated', () => {
  const m = parseManifest(
    {
      name: 'other-name_2',
      entry: './lib/util.ts',
      handler: 'main',
      memoryMb: 256,
      timeoutMs: 1000,
      concurrency: 5,
      instanceConcurrency: 4,
      sandbox: 'process',
      env: { GREETING: 'hi', _X: '' },
      network: true,
      http: { methods: ['get', 'Post', 'GET'] },
    },
    nodeCtx,
  );
  assert.equal(m.name, 'other-name_2');
  assert.equal(m.entry, 'lib/util.ts');
  assert.equal(m.handler, 'main');
  assert.equal(m.memoryMb, 256);
  assert.equal(m.sandbox, 'process');
  assert.deepEqual(m.env, { GREETING: 'hi', _X: '' });
  assert.equal(m.network, true);
  assert.deepEqual(m.http.methods, ['GET', 'POST']);
});

test('each bad field is named in the message with the rule and the value', () => {
  rejects({ memoryMb: 'lots' }, ['lamina.json: "memoryMb" must be an integer between 64 and 10240 (got "lots")']);
  rejects({ memoryMb: 32 }, ['"memoryMb"', 'between 64 and 10240', '(got 32)']);
  rejects({ memoryMb: 128.5 }, ['"memoryMb"', 'integer']);
  rejects({ memoryMb: 20000 }, ['"memoryMb"']);
  rejects({ timeoutMs: 0 }, ['"timeoutMs" must be an integer between 1 and 900000']);
  rejects({ timeoutMs: 900001 }, ['"timeoutMs"']);
  rejects({ concurrency: 1001 }, ['"concurrency" must be an integer between 1 and 1000']);
  rejects({ instanceConcurrency: 0 }, ['"instanceConcurrency" must be an integer between 1 and 1000']);
  rejects({ sandbox: 'vm' }, ['"sandbox" must be one of "auto", "container", "process", "isolate" (got "vm")']);
  rejects({ runtime: 'ruby' }, ['"runtime" must be one of "node", "python"']);
  rejects({ handler: 'my-handler' }, ['"handler" must be an identifier']);
  rejects({ http: { methods: ['GET', 'FETCH'] } }, ['"http.methods[1]" must be one of GET', '(got "FETCH")']);
  rejects({ http: { methods: [] } }, ['"http.methods" must be a non-empty array']);
  rejects({ env: { A: 1 } }, ['"env.A" must be a string (got 1)']);
  rejects({ env: { '1BAD': 'x' } }, ['"env" name "1BAD"']);
  rejects({ env: { 'A-B': 'x' } }, ['"env" name "A-B"']);
  rejects({ env: { LAMINA_TOKEN: 'x' } }, ['"env.LAMINA_TOKEN"', 'reserved prefix LAMINA_']);
  rejects({ env: { BIG: 'x'.repeat(4096) } }, ['"env" is too large', '4096']);
});

test('env of exactly 4 KiB is accepted', () => {
  const m = parseManifest({ env: { AB: 'x'.repeat(4094) } }, nodeCtx);
  assert.equal(m.env.AB?.length, 4094);
});

test('wrong types are rejected naming the field', () => {
  rejects({ network: 'no' }, ['"network" must be true or false (got "no")']);
  rejects({ env: ['A=1'] }, ['"env" must be an object']);
  rejects({ http: 'GET' }, ['"http" must be an object']);
  rejects({ http: { methods: 'GET' } }, ['"http.methods" must be a non-empty array']);
  rejects({ name: 42 }, ['"name"', '(got 42)']);
  rejects({ entry: null }, ['"entry"', '(got null)']);
  rejects({ memoryMb: '128' }, ['"memoryMb"', '(got "128")']);
});

test('unknown fields are rejected, at the top level and inside http', () => {
  rejects({ memory: 128 }, ['lamina.json: unknown field "memory"']);
  rejects({ http: { methods: ['GET'], path: '/x' } }, ['unknown field "http.path"']);
  rejects({ http: { cors: { allowOrigins: ['*'], origins: [] } } }, ['unknown field "http.cors.origins"']);
  rejects({ memory: 1, timeout: 2 }, ['"memory"', '"timeout"']);
});

test('HTTP functions: event, auth and cors are checked, defaulted and normalized', () => {
  const m = parseManifest({ http: { methods: ['GET', 'POST'], event: 'request', auth: 'token', cors: { allowOrigins: ['https://a.example'], allowHeaders: ['X-Who'] } } }, nodeCtx);
  assert.deepEqual(m.http, {
    methods: ['GET', 'POST'],
    event: 'request',
    auth: 'token',
    cors: { allowOrigins: ['https://a.example'], allowMethods: ['GET', 'POST'], allowHeaders: ['x-who'], exposeHeaders: [], allowCredentials: false, maxAge: 600 },
  });
  rejects({ http: { event: 'xml' } }, ['"http.event" must be one of "json", "request", "wsgi", "asgi"', '(got "xml")']);
  rejects({ http: { auth: 'basic' } }, ['"http.auth" must be one of "none", "token"']);
  rejects({ http: { event: 'wsgi' } }, ['"http.event": "wsgi" serves a Python WSGI application']);
  rejects({ http: { cors: { allowOrigins: ['ftp://x'] } } }, ['"http.cors.allowOrigins[0]" must be']);
  rejects({ http: { cors: { allowOrigins: ['*'], allowCredentials: true } } }, ['allowCredentials']);
  rejects({ http: { cors: { allowOrigins: ['*'], maxAge: -1 } } }, ['"http.cors.maxAge" must be an integer number of seconds']);
});

test('several problems are reported together', () => {
  rejects({ memoryMb: 'lots', network: 1 }, ['"memoryMb"', '"network"']);
});

test('the manifest must be a JSON object', () => {
  rejects([], ['must hold a JSON object']);
  rejects('x', ['must hold a JSON object']);
  rejects(null, ['must hold a JSON object']);
});

test('bad names: in the manifest, from the directory, and directly', () => {
  rejects({ name: 'Hello world' }, ['"name"', 'A-Z, a-z, 0-9', '(got "Hello world")']);
  rejects({ name: '-x' }, ['"name"']);
  rejects({ name: '.x' }, ['"name"']);
  rejects({ name: 'a'.repeat(64) }, ['"name"']);
  rejects({}, ['directory name "My Func"', 'set "name"'], { dirName: 'My Func', files: ['index.ts'] });
  assert.equal(parseManifest({ name: 'ok' }, { dirName: 'My Func', files: ['index.ts'] }).name, 'ok');
  assert.doesNotThrow(() => validateFunctionName('a'));
  assert.doesNotThrow(() => validateFunctionName('a'.repeat(63)));
  assert.doesNotThrow(() => validateFunctionName('0-a_b'));
  // OpenLambda's names: upper case and dots, never a leading dot (so never "." or "..").
  for (const good of ['L0', 'A', 'a.b', 'a..b', 'Echo-1_x']) assert.doesNotThrow(() => validateFunctionName(good), good);
  for (const bad of ['', '_a', '.', '..', '.hidden', 'a'.repeat(64), 'a/b', '../x', 'a b', 'a\\b', 'é']) {
    assert.throws(() => validateFunctionName(bad), /invalid function name .*A-Z, a-z, 0-9/, bad);
  }
});

test('entry must exist, stay inside the directory and suit the runtime', () => {
  rejects({}, ['no entry file', 'index.ts, index.mts, index.js, index.mjs'], { dirName: 'x', files: ['main.ts'] });
  rejects({ entry: 'main.ts' }, ['"entry" file "main.ts" does not exist']);
  rejects({ entry: '../index.ts' }, ['"entry" must be a relative path inside the function directory']);
  rejects({ entry: 'lib/../../index.ts' }, ['"entry" must be a relative path inside']);
  rejects({ entry: '/etc/passwd.js' }, ['"entry" must be a relative path inside']);
  rejects({ entry: 'lib\\util.ts' }, ['"entry" must be a relative path inside']);
  rejects({ runtime: 'node', entry: 'index.py' }, ['"entry" must be a', 'node runtime'], { dirName: 'x', files: ['index.py'] });
  assert.equal(parseManifest({ entry: 'lib/./util.ts' }, nodeCtx).entry, 'lib/util.ts');
});
