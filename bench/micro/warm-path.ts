// Micro-benchmark of the warm path's pieces (issue 15): each old way against its
// replacement, in one process, alternating rounds, CPU time per operation
// (process.cpuUsage), so the ratios hold on a busy machine where wall-clock
// throughput does not. Run: node --import tsx bench/micro/warm-path.ts
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_PRICES } from '../../src/metering/billing.js';
import { InvocationStore } from '../../src/metering/store.js';
import type { InvocationRecord } from '../../src/metering/types.js';
import { requestOf } from '../../src/runtime/node/fetch-call.js';
import { parseHostFrame, parseRuntimeFrame, zodOnly } from '../../src/sandbox/frames.js';
import { openDatabase } from '../../src/store/db.js';
import { median } from '../lib/stats.js';
import { table } from '../lib/table.js';

const ROUNDS = 5;

async function cpuUs(n: number, op: () => unknown): Promise<number> {
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const r = op();
    if (r instanceof Promise) await r;
  }
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / n;
}

/** Old and new, alternated over ROUNDS rounds after a warm-up; medians in us of CPU per operation. */
async function pair(what: string, n: number, old: () => unknown, neu: () => unknown): Promise<(string | number)[]> {
  await cpuUs(Math.ceil(n / 5), old);
  await cpuUs(Math.ceil(n / 5), neu);
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2) b.push(await cpuUs(n, neu)), a.push(await cpuUs(n, old));
    else a.push(await cpuUs(n, old)), b.push(await cpuUs(n, neu));
  }
  const [o, x] = [median(a), median(b)];
  return [what, o, x, o / x];
}

const rows: (string | number)[][] = [];
const result = JSON.parse(JSON.stringify({ t: 'result', id: 'a7e1c0d2-3c4b-4f1e-9d5a-0123456789ab', ok: true, ms: 0.12, value: { hello: 'world' } }));
const hostResult = JSON.parse(JSON.stringify({ t: 'result', q: 12345, value: '{"hello":"world"}', stats: { used: 1048576, peak: 2097152, cpuMs: 12.5 } }));
rows.push(await pair('check a runtime result frame (zod -> fast path)', 50_000, () => zodOnly.runtime(result), () => parseRuntimeFrame(result)));
rows.push(await pair('check an isolate host result frame (zod -> fast path)', 50_000, () => zodOnly.host(hostResult), () => parseHostFrame(hostResult)));
rows.push(await pair('read /proc/PID/statm (fs.promises -> readFileSync)', 5_000, () => readFile(`/proc/${process.pid}/statm`, 'utf8'), () => readFileSync(`/proc/${process.pid}/statm`, 'utf8')));

const ev = { headers: { 'content-type': 'application/json', host: '127.0.0.1', 'user-agent': 'wrk', accept: '*/*' }, requestContext: { http: { method: 'POST' } }, body: '{"hello":"world"}' };
const undici = async () => {
  const h = new Headers();
  for (const [k, v] of Object.entries(ev.headers)) h.append(k, v);
  await new Request('http://localhost/run/f', { method: 'POST', headers: h, body: ev.body, duplex: 'half' } as RequestInit).text();
};
rows.push(await pair('fetch handler: build the Request, read its body (undici -> lazy)', 10_000, undici, () => requestOf('http://localhost/run/f', ev).text()));

let timer: NodeJS.Timeout | undefined;
const set = new Set<() => void>();
const probe = () => undefined;
rows.push(
  await pair('memory watchdog per call (an interval each -> one shared sampler)', 50_000, () => {
    timer = setInterval(probe, 50);
    clearInterval(timer);
  }, () => {
    set.add(probe);
    set.delete(probe);
  }),
);

// Metering: 500 records flushed through Kysely (the old path: a Db without the sqlite handle) and through the prepared statement.
const dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-micro-'));
try {
  const db = await openDatabase(dir);
  const viaKysely = new InvocationStore({ kysely: db.kysely, dialect: db.dialect, close: () => db.close() }, DEFAULT_PRICES, 1);
  const prepared = new InvocationStore(db, DEFAULT_PRICES, 1);
  let n = 0;
  const rec = (): InvocationRecord => ({ requestId: `r${n++}`, function: 'noop', version: 1, worker: 'w', instance: 'i', startedAt: new Date().toISOString(), durationMs: 0.1, billedMs: 1, memoryMb: 128, maxMemoryMb: 40, gbSeconds: 0.000125, cold: false, initMs: null, status: 'Success', statusCode: 200, logs: '', trigger: 'http' });
  const batch = (store: InvocationStore) => async () => {
    for (let i = 0; i < 500; i++) store.record(rec());
    await store.flush();
  };
  const row = await pair('metering: 500 records, one flush (Kysely -> prepared statement)', 10, batch(viaKysely), batch(prepared));
  rows.push(['metering: per record (Kysely -> prepared statement)', (row[1] as number) / 500, (row[2] as number) / 500, row[3] as number]);
  await db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(`warm-path micro-benchmark, ${new Date().toISOString()}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, Node ${process.version}`);
console.log(table(['step', 'old us CPU/op', 'new us CPU/op', 'x cheaper'], rows.map((r) => [r[0], r[1], r[2], r[3]] as (string | number)[])));

