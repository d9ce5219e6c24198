// The embedded store's metering writes, on a worker thread with its own SQLite
// connection: under warm load the gateway's thread is the bottleneck, and the
// inserts (three B-trees per record) were a tenth of its CPU. The thread gets a
// batch per flush (one message) and answers when it is committed.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Column values of one row: the INSERT's positional parameters in order, or its named ones. */
export type Row = (string | number | null)[] | Record<string, string | number | null>;

// The worker's code travels as a string: the server ships as one bundle, and a
// separate entry file would need a second build output found at run time.
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const message = (err) => String((err && err.message) || err);
let db, run;
try {
  const Database = require(workerData.module);
  db = new Database(workerData.file);
  db.pragma('busy_timeout = 5000');
  db.pragma('synchronous = NORMAL');
  const insert = db.prepare(workerData.sql);
  run = db.transaction((rows) => { for (const r of rows) insert.run(r); });
} catch (err) {
  parentPort.postMessage({ fatal: message(err) });
  if (db) db.close();
  parentPort.close();
}
if (run) parentPort.on('message', (m) => {
  if (m === 'close') { db.close(); parentPort.close(); return; }
  try { run(m.rows); parentPort.postMessage({ id: m.id }); }
  catch (err) { parentPort.postMessage({ id: m.id, error: message(err) }); }
});
`;

export class ThreadWriter {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private seq = 0;
  private failed: Error | undefined;
  private readonly exited: Promise<void>;

  /** `file`: the database file (not `:memory:`); `sql`: an INSERT with named parameters. */
  constructor(file: string, sql: string) {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    // No execArgv: the thread runs plain CommonJS and needs none of the server's flags or loaders.
    this.worker = new Worker(WORKER_CODE, { eval: true, execArgv: [], workerData: { module, file, sql } });
    this.worker.on('message', (m: { id: number; error?: string; fatal?: string }) => {
      if (m.fatal !== undefined) return this.fail(new Error(`the metering writer thread could not start: ${m.fatal}`));
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if (m.error === undefined) p?.resolve();
      else p?.reject(new Error(m.error));
    });
    // An error thrown in the thread arrives as a copy, not always an Error (better-sqlite3's SqliteError).
    this.worker.on('error', (err: unknown) => this.fail(err instanceof Error ? err : new Error(String((err as { message?: unknown } | null)?.message ?? err))));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => {
      this.fail(new Error('the metering writer thread ended'));
      resolve();
    }));
    // Idle, never what keeps the server's process alive; a batch being written is (see write).
    // After the listeners: adding a 'message' listener refs the worker again.
    this.worker.unref();
  }

  /** False once the thread has failed; the caller then writes on its own thread. */
  get usable(): boolean {
    return this.failed === undefined;
  }

  /** Commits `rows` in one transaction; rejects if the thread cannot. */
  write(rows: Row[]): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.seq++;
    if (this.pending.size === 0) this.worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, rows });
    });
  }

  /** Lets the thread finish what it was given, then ends it. */
  async close(): Promise<void> {
    // Held until the thread has closed its connection.
    this.worker.ref();
    if (!this.failed) this.worker.postMessage('close');
    await this.exited;
  }

  private fail(err: Error): void {
    this.failed ??= err;
    for (const p of this.pending.values()) p.reject(this.failed);
    this.pending.clear();
    this.worker.unref();
  }
}
