// Units of the console's layer: Lambda's REPORT line, chart series, the SSE
// parser the CLI uses, the terminal's lines, and the data dir lock.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseSse } from '../../src/cli/follow.js';
import { buildSeries, quantile } from '../../src/console/stats.js';
import { terminalLine } from '../../src/live/terminal-log.js';
import { finishLogs, reportLine } from '../../src/metering/report.js';
import type { InvocationRecord } from '../../src/metering/types.js';
import { DataDirLockedError, LOCK_FILE, lockDataDir } from '../../src/util/data-dir-lock.js';

const rec = (over: Partial<InvocationRecord> = {}): InvocationRecord => ({
  requestId: 'req-1',
  function: 'f',
  version: 3,
  worker: 'w',
  instance: 'i',
  startedAt: '2026-01-01T00:00:00.000Z',
  durationMs: 12.3456,
  billedMs: 100,
  memoryMb: 128,
  maxMemoryMb: 40.4,
  gbSeconds: 0.0125,
  cold: false,
  initMs: null,
  status: 'Success',
  statusCode: 200,
  logs: '',
  ...over,
});

test('REPORT line: exact Lambda format, Init Duration only on cold calls', () => {
  assert.equal(reportLine(rec()), 'REPORT RequestId: req-1\tDuration: 12.35 ms\tBilled Duration: 100 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\t');
  assert.equal(
    reportLine(rec({ cold: true, initMs: 5 })),
    'REPORT RequestId: req-1\tDuration: 12.35 ms\tBilled Duration: 100 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 5.00 ms\t',
  );
});

test("a failed call's logs end with its error (stack frames included) and the REPORT line", () => {
  const logs = finishLogs(rec({ logs: 'hello', status: 'HandlerError' }), { type: 'HandlerError', message: 'bad', stack: 'Error: bad\n    at handler (index.mjs:1:1)' });
  const lines = logs.split('\n');
  assert.equal(lines[0], 'hello');
  assert.equal(lines[1], '2026-01-01T00:00:00.000Z\treq-1\tERROR\tHandlerError: bad');
  assert.equal(lines[2], '    at handler (index.mjs:1:1)');
  assert.match(lines[3]!, /^REPORT RequestId: req-1\t/);
  assert.equal(lines[4], '');
  assert.match(finishLogs(rec({ logs: 'ok\n' })), /^ok\nREPORT /);
});

test('per-minute series: counts, errors, nearest-rank p50/p99, empty minutes', () => {
  assert.equal(quantile([], 0.5), null);
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2);
  assert.equal(quantile([1, 2, 3, 4], 0.99), 4);
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const calls = [
    { startedAt: '2026-01-01T00:00:10Z', durationMs: 10, ok: true },
    { startedAt: '2026-01-01T00:00:20Z', durationMs: 30, ok: false },
    { startedAt: '2026-01-01T00:02:00Z', durationMs: 5, ok: true },
    { startedAt: '2025-12-31T23:00:00Z', durationMs: 99, ok: true },
  ];
  const s = buildSeries(calls, t0, t0 + 3 * 60_000, 60_000);
  assert.equal(s.length, 3);
  assert.deepEqual(s[0], { t: t0 / 1000, calls: 2, errors: 1, p50: 10, p99: 30 });
  assert.deepEqual(s[1], { t: t0 / 1000 + 60, calls: 0, errors: 0, p50: null, p99: null });
  assert.equal(s[2]!.calls, 1);
});

test('SSE parser: events split across chunks, comments skipped, CRLF accepted', async () => {
  async function* chunks() {
    const enc = new TextEncoder();
    for (const c of ['retry: 2000\nevent: ready\ndata: {}\n\n: keep-alive\n\nevent: invo', 'cation\ndata: {"a":\ndata: 1}\n\n', 'event: x\r\ndata: 2\r\n\r\n']) yield enc.encode(c);
  }
  const got = [];
  for await (const m of parseSse(chunks())) got.push(m);
  assert.deepEqual(got, [
    { event: 'ready', data: '{}' },
    { event: 'invocation', data: '{"a":\n1}' },
    { event: 'x', data: '2' },
  ]);
});

test('terminal: a line per deploy and failed call, none per success; JSON off a TTY', () => {
  assert.equal(terminalLine({ type: 'invocation', record: rec() }, true), undefined);
  assert.equal(terminalLine({ type: 'invocation', record: rec() }, false), undefined);
  const failed = rec({ status: 'HandlerError', statusCode: 500, logs: finishLogs(rec(), { type: 'HandlerError', message: 'nope' }) });
  const pretty = terminalLine({ type: 'invocation', record: failed }, true)!;
  assert.match(pretty, /HandlerError f v3 .* req-1: HandlerError: nope$/);
  const json = JSON.parse(terminalLine({ type: 'invocation', record: failed }, false)!);
  assert.equal(json.event, 'call-failed');
  assert.equal(json.error, 'HandlerError: nope');
  assert.equal(JSON.parse(terminalLine({ type: 'deployed', name: 'f', version: 2, at: '' }, false)!).version, 2);
  assert.match(terminalLine({ type: 'deployed', name: 'f', version: 2, at: '' }, true)!, /deployed f version 2$/);
});

test('data dir lock: a live owner refuses, a dead one is taken over', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-lock-'));
  try {
    const a = lockDataDir(dir);
    assert.throws(() => lockDataDir(dir), DataDirLockedError);
    a.release();
    lockDataDir(dir).release();
    // A process that held the lock and died without releasing it (kill -9).
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await new Promise((r) => child.once('spawn', r));
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: child.pid, start }));
    assert.throws(() => lockDataDir(dir), /another Lamina server \(pid \d+\) is using the data dir/);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const b = lockDataDir(dir);
    b.release();
    // A reused pid (same pid, other start time) is not the owner either.
    writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, start: '1' }));
    lockDataDir(dir).release();
    writeFileSync(path.join(dir, LOCK_FILE), 'garbage');
    lockDataDir(dir).release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
