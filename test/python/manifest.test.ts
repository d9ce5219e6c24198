// OpenLambda function directories: f.py detection, ol.yaml mapped onto
// lamina.json's fields (and validated by the same parseManifest), names,
// HTTP event modes, and the tier rules for Python.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LaminaError } from '../../src/errors.js';
import { parseManifest } from '../../src/registry/manifest.js';
import { olYamlToManifest } from '../../src/registry/ol-yaml.js';

function invalid(fn: () => unknown, fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof LaminaError, String(err));
    assert.equal(err.status, 400);
    for (const f of fragments) assert.ok(err.message.includes(f), `${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

test('a directory with f.py and no Node entry is a Python function with def f(event)', () => {
  const m = parseManifest({}, { dirName: 'L0', files: ['f.py', 'requirements.txt', 'ol.yaml'] });
  assert.equal(m.name, 'L0');
  assert.equal(m.runtime, 'python');
  assert.equal(m.entry, 'f.py');
  assert.equal(m.handler, 'f');
  // A Node entry wins (f.py beside index.ts is just a file).
  assert.equal(parseManifest({}, { dirName: 'x', files: ['f.py', 'index.js'] }).runtime, 'node');
  // An explicit .py entry means python.
  const e = parseManifest({ entry: 'app.py', handler: 'handler' }, { dirName: 'x', files: ['app.py'] });
  assert.equal(e.runtime, 'python');
  // Neither: the Node message, naming the files it looked for.
  invalid(() => parseManifest({}, { dirName: 'x', files: ['main.go'] }), ['no entry file', 'index.ts']);
});

test('Python on a tier that cannot host it: the message names the tier that can', () => {
  for (const sandbox of ['process', 'isolate']) {
    invalid(() => parseManifest({ sandbox }, { dirName: 'x', files: ['f.py'] }), [`"sandbox": "${sandbox}" cannot run python`, '"auto" or "container"']);
  }
  assert.equal(parseManifest({ sandbox: 'container' }, { dirName: 'x', files: ['f.py'] }).sandbox, 'container');
});

test('http.event: json, request, wsgi, asgi; wsgi/asgi default the handler to app and need python', () => {
  const w = parseManifest({ http: { event: 'wsgi' } }, { dirName: 'flask-test', files: ['f.py'] });
  assert.deepEqual([w.runtime, w.handler, w.http.event], ['python', 'app', 'wsgi']);
  const a = parseManifest({ http: { event: 'asgi', methods: ['GET'] }, handler: 'api' }, { dirName: 'fastapi-test', files: ['f.py'] });
  assert.deepEqual([a.handler, a.http.event, a.http.methods], ['api', 'asgi', ['GET']]);
  assert.equal(parseManifest({ http: { event: 'request' } }, { dirName: 'x', files: ['index.js'] }).http.event, 'request');
  assert.equal(parseManifest({}, { dirName: 'x', files: ['index.js'] }).http.event, 'json');
  invalid(() => parseManifest({ http: { event: 'wsgi' } }, { dirName: 'x', files: ['index.js'] }), ['"http.event": "wsgi"', 'a node function uses "json" or "request"']);
  invalid(() => parseManifest({ http: { event: 'cgi' } }, { dirName: 'x', files: ['f.py'] }), ['"http.event" must be one of "json", "request", "wsgi", "asgi"', '(got "cgi")']);
});

test('ol.yaml maps environment, triggers and limits onto lamina.json fields', () => {
  const raw = olYamlToManifest(`
triggers:
  http:
    - method: GET
    - method: post
  cron:
    - schedule: "*/5 * * * *"
environment:
  MY_ENV_VAR1: "value1"
  DEBUG: 1
  ON: true
limits:
  mem_mb: 256
  runtime_sec: 2.5
  procs: 20
`);
  assert.deepEqual(raw, {
    env: { MY_ENV_VAR1: 'value1', DEBUG: '1', ON: 'true' },
    http: { methods: ['GET', 'post'] },
    schedules: [{ cron: '*/5 * * * *' }],
    memoryMb: 256,
    timeoutMs: 2500,
    processes: 20,
  });
  // Without cron triggers there is no schedules field, and the rest validates as a manifest.
  const plain = olYamlToManifest('triggers:\n  http:\n    - method: PUT\nenvironment:\n  A: b\nlimits:\n  mem_mb: 64\n  procs: 8\n');
  assert.equal('schedules' in plain, false);
  const m = parseManifest(plain, { dirName: 'cfg', files: ['f.py', 'ol.yaml'] });
  assert.deepEqual([m.runtime, m.http.methods, m.env, m.memoryMb, m.processes], ['python', ['PUT'], { A: 'b' }, 64, 8]);
  // Empty or comment-only files are no configuration.
  assert.deepEqual(olYamlToManifest(''), {});
  assert.deepEqual(olYamlToManifest('# nothing\n'), {});
});

test('ol.yaml: unknown keys are refused by name, at every level; bad values and bad YAML too', () => {
  invalid(() => olYamlToManifest('triggers: {}\nruntime: python\nfoo: 1\n'), ['ol.yaml: unknown keys "runtime", "foo"', 'known: triggers, environment, limits']);
  invalid(() => olYamlToManifest('triggers:\n  kafka: []\n'), ['unknown key "triggers.kafka"', 'known: http, cron']);
  invalid(() => olYamlToManifest('triggers:\n  http:\n    - method: GET\n      path: /x\n'), ['unknown key "triggers.http[0].path"']);
  invalid(() => olYamlToManifest('limits:\n  cpu: 2\n'), ['unknown key "limits.cpu"', 'mem_mb, runtime_sec, procs']);
  invalid(() => olYamlToManifest('limits:\n  mem_mb: lots\n'), ['"limits.mem_mb" must be a number']);
  invalid(() => olYamlToManifest('environment:\n  A: [1, 2]\n'), ['"environment.A" must be a string']);
  invalid(() => olYamlToManifest('triggers:\n  http: GET\n'), ['"triggers.http" must be a list']);
  invalid(() => olYamlToManifest('triggers:\n  cron:\n    - schedule: ""\n'), ['"triggers.cron[0].schedule"']);
  invalid(() => olYamlToManifest('- a\n- b\n'), ['ol.yaml: must hold a mapping']);
  invalid(() => olYamlToManifest('a: [\n'), ['ol.yaml: invalid YAML']);
  invalid(() => olYamlToManifest('environment:\n  A: x\nenvironment:\n  B: y\n'), ['ol.yaml: invalid YAML']);
  // Alias expansion is refused (a "billion laughs" file cannot blow up the server).
  invalid(() => olYamlToManifest('environment:\n  A: &x hello\n  B: *x\n'), ['ol.yaml: invalid YAML', 'Alias']);
  // Mapped values still obey lamina.json's rules.
  invalid(() => parseManifest(olYamlToManifest('limits:\n  mem_mb: 1\n'), { dirName: 'x', files: ['f.py'] }), ['"memoryMb" must be an integer between 64 and 10240']);
  invalid(() => parseManifest(olYamlToManifest('triggers:\n  http:\n    - method: FETCH\n'), { dirName: 'x', files: ['f.py'] }), ['"http.methods[0]"']);
  invalid(() => parseManifest(olYamlToManifest('environment:\n  LAMINA_X: y\n'), { dirName: 'x', files: ['f.py'] }), ['reserved prefix']);
});
