// The live event stream, `lamina logs -f`, rollback and the CLI papercuts of
// issue 14, against real servers and the real `lamina` command.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseSse } from '../../src/cli/follow.js';
import { CLI, ROOT, admin, call, deployCode, invoke, sleep, startServer, type TestServer } from '../helpers/server.js';

/** The CLI, run without blocking this process's event loop (the test may serve the CLI's requests itself). */
function laminaAsync(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

function lamina(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Resolves with the first line of `stream` matching `re` (no time bound of its own: the test runner's applies). */
function waitFor(stream: NodeJS.ReadableStream, re: RegExp, seen: { text: string }): Promise<RegExpExecArray> {
  return new Promise((resolve) => {
    const check = () => {
      const m = re.exec(seen.text);
      if (m) {
        stream.off('data', onData);
        resolve(m);
      }
    };
    const onData = (b: Buffer) => {
      seen.text += b.toString();
      check();
    };
    stream.on('data', onData);
    check();
  });
}

describe('live events and the CLI', () => {
  let s: TestServer;
  let env: Record<string, string>;
  before(async () => {
    // A small payload cap keeps the 413 test's body within one write (no reset while still sending).
    s = await startServer({ tier: 'process', env: { LAMINA_PAYLOAD_LIMIT_BYTES: '65536' } });
    env = { LAMINA_URL: s.url, LAMINA_TOKEN: s.token };
    await deployCode(s, 'echo', 'export async function handler(e) { console.log("echo says", JSON.stringify(e)); return e; }');
    await deployCode(s, 'loud', 'export async function handler() { console.log("x".repeat(60000)); return 1; }');
  });
  after(async () => {
    await s?.stop();
  });

  test('the event stream needs the token and a known function', async () => {
    assert.equal((await call(`${s.url}/api/v1/events`)).status, 401);
    assert.equal((await call(`${s.url}/api/v1/events`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    const r = await admin(s, 'GET', '/events?function=nope');
    assert.equal(r.status, 404);
    assert.equal(r.body.error.type, 'FunctionNotFound');
  });

  test('the event stream delivers calls (with logs and REPORT) and deploys after ready', async () => {
    const stop = new AbortController();
    const res = await fetch(`${s.url}/api/v1/events`, { headers: { authorization: `Bearer ${s.token}` }, signal: stop.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const it = parseSse(res.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    assert.equal((await it.next()).value.event, 'ready');
    const r = await invoke(s, 'echo', { n: 1 });
    const id = r.headers.get('x-lamina-request-id');
    let ev = (await it.next()).value;
    assert.equal(ev.event, 'invocation');
    const rec = JSON.parse(ev.data);
    assert.equal(rec.requestId, id);
    assert.match(rec.logs, /echo says \{"n":1\}/);
    assert.match(rec.logs, new RegExp(`REPORT RequestId: ${id}\\tDuration: [\\d.]+ ms\\tBilled Duration: \\d+ ms\\tMemory Size: 128 MB\\tMax Memory Used: \\d+ MB`));
    await deployCode(s, 'echo', 'export async function handler(e) { console.log("echo says", JSON.stringify(e)); return e; }');
    ev = (await it.next()).value;
    assert.equal(ev.event, 'deployed');
    assert.equal(JSON.parse(ev.data).name, 'echo');
    stop.abort();
  });

  test('lamina logs -f prints a call made after it starts; Ctrl-C ends it', async () => {
    const child = spawn(process.execPath, [CLI, 'logs', 'echo', '-f', '-n', '1'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { text: '' };
    const err = { text: '' };
    try {
      await waitFor(child.stderr, /following echo/, err);
      const r = await invoke(s, 'echo', { after: 'follow' });
      const id = r.headers.get('x-lamina-request-id')!;
      await waitFor(child.stdout, new RegExp(`REPORT RequestId: ${id}`), out);
      assert.match(out.text, /echo says \{"after":"follow"\}/);
    } finally {
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGINT');
      assert.equal(await exited, 0);
    }
  });

  test('lamina logs: an unknown function is named; a closed pipe is not a crash', () => {
    const r = lamina(['logs', 'nope'], env);
    assert.equal(r.code, 1);
    assert.equal(r.err.trim(), 'lamina: FunctionNotFound: function "nope" does not exist');
    for (let i = 0; i < 3; i++) spawnSync(process.execPath, [CLI, 'invoke', 'loud'], { env: { ...process.env, ...env } });
    // 3 x 60 KB is more than a pipe holds: the CLI writes after `head` has gone.
    const p = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" logs loud | head -1; echo "rc=\${PIPESTATUS[0]}" >&2`], { encoding: 'utf8', env: { ...process.env, ...env } });
    assert.match(p.stdout, /^--- .* Success/);
    assert.equal(p.stderr.trim(), 'rc=0');
  });

  test('a non-Lamina server answering the CLI gives one line', async () => {
    const other = createServer((_req, res) => res.writeHead(404, { 'content-type': 'text/html' }).end('<!doctype html>\n<html><body>\n<h1>Not Found</h1>\n</body></html>\n'));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
      for (const args of [['ls'], ['logs', 'x'], ['logs', 'x', '-f']]) {
        const r = await laminaAsync(args, { LAMINA_URL: url, LAMINA_TOKEN: 't' });
        assert.equal(r.code, 1);
        assert.equal(r.err.trim().split('\n').length, 1, r.err);
        assert.match(r.err, /did not answer as a Lamina server \(HTTP 404, text\/html\)/);
        assert.doesNotMatch(r.err, /<html/);
      }
    } finally {
      other.close();
    }
  });

  test('lamina ls shows the tier in use, not auto; --version', () => {
    const r = lamina(['ls'], env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /echo\s+\d+\s+node\s+128 MB\s+process/);
    assert.doesNotMatch(r.out, /auto/);
    const v = lamina(['--version']);
    assert.equal(v.out.trim(), JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });

  test('a 413 answer carries x-lamina-request-id', async () => {
    const r = await call(`${s.url}/run/echo`, { method: 'POST', body: 'x'.repeat(65536 + 10), headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 413);
    assert.match(r.headers.get('x-lamina-request-id') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(r.body.error.requestId, r.headers.get('x-lamina-request-id'));
  });

  test('rollback makes an old version current again as a new version; bad input is refused', async () => {
    await deployCode(s, 'ver', 'export const handler = async () => "one";');
    await deployCode(s, 'ver', 'export const handler = async () => "two";');
    assert.equal((await invoke(s, 'ver')).body, 'two');
    const rb = await admin(s, 'POST', '/functions/ver/rollback', JSON.stringify({ version: 1 }), 'application/json');
    assert.equal(rb.status, 201, rb.text);
    assert.equal(rb.body.version, 3);
    assert.equal(rb.body.rolledBackTo, 1);
    assert.equal((await invoke(s, 'ver')).body, 'one');
    const d = await admin(s, 'GET', '/functions/ver');
    assert.deepEqual(d.body.versions.map((v: { version: number }) => v.version), [1, 2, 3]);
    assert.equal((await admin(s, 'POST', '/functions/ver/rollback', JSON.stringify({ version: 9 }), 'application/json')).status, 404);
    assert.equal((await admin(s, 'POST', '/functions/nope/rollback', JSON.stringify({ version: 1 }), 'application/json')).status, 404);
    assert.equal((await admin(s, 'POST', '/functions/ver/rollback', JSON.stringify({ version: 'x' }), 'application/json')).status, 400);
    assert.equal((await admin(s, 'POST', '/functions/ver/rollback', '{not json', 'application/json')).status, 400);
    assert.equal((await call(`${s.url}/api/v1/functions/ver/rollback`, { method: 'POST', body: '{"version":1}' })).status, 401);
  });

  test('per-minute stats of the last hour', async () => {
    const r = await admin(s, 'GET', '/functions/echo/stats?minutes=60');
    assert.equal(r.status, 200);
    assert.ok(r.body.buckets.length >= 60);
    const total = r.body.buckets.reduce((n: number, b: { calls: number }) => n + b.calls, 0);
    assert.ok(total >= 2, `counted ${total} calls`);
    assert.equal((await admin(s, 'GET', '/functions/echo/stats?minutes=0')).status, 400);
    assert.equal((await admin(s, 'GET', '/functions/nope/stats')).status, 404);
  });
});

describe('lamina up and its data dir', () => {
  test('prints the export line for a non-default data dir; a second server on it is refused; a killed one leaves no lock', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lamina-lockdir-'));
    let a: TestServer | undefined;
    try {
      a = await startServer({ tier: 'process', dataDir });
      const exportLine = new RegExp(`export LAMINA_URL=${a.url.replace(/\./g, '\\.')} LAMINA_TOKEN=\\$\\(cat ${dataDir}/token\\)`);
      while (!exportLine.test(a.output())) await sleep(50); // printed just after the "listening" line

      const second = lamina(['up', '--port', '0', '--data-dir', dataDir, '--sandbox', 'process']);
      assert.equal(second.code, 1);
      assert.match(second.err, new RegExp(`lamina: another Lamina server \\(pid ${a.proc.pid}, ${a.url.replace(/\./g, '\\.')}\\) is using the data dir`));
      await a.stop('SIGKILL');
      a = await startServer({ tier: 'process', dataDir });
      assert.equal((await call(`${a.url}/healthz`)).status, 200);
    } finally {
      await a?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('stopping a server with an event stream open does not hang', async () => {
    const s = await startServer({ tier: 'process' });
    const res = await fetch(`${s.url}/api/v1/events`, { headers: { authorization: `Bearer ${s.token}` } });
    const it = parseSse(res.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    assert.equal((await it.next()).value.event, 'ready');
    assert.equal(await s.stop(), 0);
    assert.equal((await it.next()).done, true, 'the stream ends with the server');
  });
});
