// The `lamina` command against a real server: every command, its --help, and its errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI, ROOT, startServer, type TestServer } from '../helpers/server.js';

function lamina(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('lamina CLI', () => {
  let s: TestServer;
  let env: Record<string, string>;
  const work = mkdtempSync(path.join(os.tmpdir(), 'lamina-cli-'));
  before(async () => {
    s = await startServer();
    env = { LAMINA_URL: s.url, LAMINA_TOKEN: s.token };
  });
  after(async () => {
    await s.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test('every command has --help', () => {
    for (const cmd of [[], ['up'], ['deploy'], ['invoke'], ['ls'], ['rm'], ['logs'], ['bill'], ['init']]) {
      const r = lamina([...cmd, '--help']);
      assert.equal(r.code, 0, `${cmd.join(' ')} --help: ${r.err}`);
      assert.match(r.out, /Usage: lamina/);
    }
  });

  test('init scaffolds a TypeScript function that deploys and runs', () => {
    const dir = path.join(work, 'scaffolded');
    const init = lamina(['init', dir]);
    assert.equal(init.code, 0, init.err);
    assert.match(readFileSync(path.join(dir, 'index.ts'), 'utf8'), /export async function handler/);
    const dep = lamina(['deploy', dir], env);
    assert.equal(dep.code, 0, dep.err);
    assert.match(dep.out, /deployed scaffolded version 1/);
    const inv = lamina(['invoke', 'scaffolded', '--data', '{"name":"cli"}'], env);
    assert.equal(inv.code, 0, inv.err);
    assert.equal(JSON.parse(inv.out).message, 'hello, cli');
    assert.equal(lamina(['init', dir]).code, 1, 'refuses a non-empty directory');
  });

  test('deploy, invoke, ls, logs, bill, rm', () => {
    assert.equal(lamina(['deploy', path.join(ROOT, 'examples', 'hello')], env).code, 0);
    const inv = lamina(['invoke', 'hello', '--data', '{"name":"Lin"}'], env);
    assert.equal(inv.code, 0, inv.err);
    assert.deepEqual(JSON.parse(inv.out), { message: 'Hello, Lin!' });
    const ls = lamina(['ls'], env);
    assert.equal(ls.code, 0);
    assert.match(ls.out, /^NAME\s+VERSION/m);
    assert.match(ls.out, /^hello\s+1\s+node/m);
    const logs = lamina(['logs', 'hello'], env);
    assert.equal(logs.code, 0, logs.err);
    assert.match(logs.out, /Success/);
    const bill = lamina(['bill'], env);
    assert.equal(bill.code, 0, bill.err);
    assert.match(bill.out, /^hello\s+1\s+0\s+1\s/m);
    assert.match(bill.out, /^TOTAL/m);
    assert.equal(lamina(['rm', 'hello'], env).code, 0);
    assert.doesNotMatch(lamina(['ls'], env).out, /^hello/m);
  });

  test('errors print one line and exit non-zero', () => {
    const cases: [string[], RegExp][] = [
      [['invoke', 'missing-fn'], /FunctionNotFound/],
      [['invoke', 'x', '--data', '{nope'], /--data is not valid JSON/],
      [['rm', 'missing-fn'], /FunctionNotFound/],
      [['deploy', path.join(work, 'does-not-exist')], /is not a directory/],
      [['ls', '--url', 'http://127.0.0.1:1'], /cannot reach http:\/\/127\.0\.0\.1:1/],
      [['ls', '--token', 'wrong'], /Unauthorized/],
      [['bill', '--since', 'not-a-date'], /since must be an ISO 8601 time/],
    ];
    for (const [args, message] of cases) {
      const r = lamina(args, env);
      assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
      assert.match(r.err, message, `${args.join(' ')}: ${r.err}`);
      assert.equal(r.err.trim().split('\n').length, 1, `one line: ${r.err}`);
    }
  });

  test('up refuses a bad flag with a clear message', () => {
    const r = lamina(['up', '--sandbox', 'vm', '--data-dir', path.join(work, 'd'), '--port', '0']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /sandbox must be one of/);
  });
});
