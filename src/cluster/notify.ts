// Change notices between the processes of a cluster, over PostgreSQL
// LISTEN/NOTIFY: a deploy or delete (`lamina_registry`, payload: the function
// name) and a membership change (`lamina_workers`, payload: the worker id).
// Notices are a fast path only: every listener also polls, and after a lost
// connection it reconnects and calls `onReconnect` to catch up.
import { sql } from 'kysely';
import pg from 'pg';
import type { Db } from '../store/db.js';

export const REGISTRY_CHANNEL = 'lamina_registry';
export const WORKERS_CHANNEL = 'lamina_workers';
/** Async events were enqueued (payload: the function, or * for several): workers' dispatchers look now rather than at their next poll. */
export const ASYNC_CHANNEL = 'lamina_async';

/** Sends a notice (delivered to listeners once the statement commits). */
export async function notify(db: Db, channel: string, payload: string): Promise<void> {
  if (db.dialect !== 'postgres') return;
  await sql`select pg_notify(${channel}, ${payload})`.execute(db.kysely);
}

export class PgListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(
    private readonly url: string,
    private readonly channels: string[],
    private readonly onNotice: (channel: string, payload: string) => void,
    private readonly onReconnect: () => void,
    private readonly log: (msg: string) => void,
  ) {}

  async start(): Promise<void> {
    await this.connect(false);
  }

  private async connect(reconnecting: boolean): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.url, application_name: 'lamina-listen' });
    client.on('notification', (n) => this.onNotice(n.channel, n.payload ?? ''));
    client.on('error', () => undefined); // 'end' follows; reconnect there
    client.on('end', () => {
      if (this.client !== client || this.stopped) return;
      this.client = undefined;
      this.log('lost the PostgreSQL notice connection; reconnecting');
      this.schedule();
    });
    try {
      await client.connect();
      for (const ch of this.channels) await client.query(`LISTEN ${pg.escapeIdentifier(ch)}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      if (!reconnecting) throw err;
      if (this.failures++ === 0) this.log(`cannot listen for notices: ${(err as Error).message}; retrying`);
      this.schedule();
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.failures = 0;
    if (reconnecting) this.onReconnect();
  }

  private schedule(): void {
    if (this.stopped || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.connect(true);
    }, Math.min(5000, 250 * 2 ** Math.min(this.failures, 5)));
    this.retry.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
