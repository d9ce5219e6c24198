// The gateway's view of invocation records in a cluster. Workers write their
// records to the shared database themselves, in batches (every 200 ms). So
// that a record is visible through a gateway as soon as that gateway has
// answered the call (as on one node), every read first asks the workers this
// gateway sent calls to since its last read to write what they hold (a read
// barrier; a few ms, and only when someone reads). Calls served through
// other gateways show up within one batch interval.
import { request } from 'undici';
import type { Prices } from '../metering/billing.js';
import { InvocationStore, type BillingReport } from '../metering/store.js';
import type { InvocationRecord } from '../metering/types.js';
import type { Db } from '../store/db.js';
import type { Membership } from './membership.js';
import { INTERNAL_PREFIX } from './protocol.js';

export class ClusterInvocationStore extends InvocationStore {
  constructor(
    db: Db,
    prices: Prices,
    granularityMs: number,
    private readonly members: Membership,
    private readonly secret: string,
    log: (msg: string) => void,
  ) {
    super(db, prices, granularityMs, log);
  }

  /** Has every worker this gateway used since the last barrier write its buffered records. */
  async barrier(): Promise<void> {
    const dirty = this.members.all().filter((m) => m.dirty && m.state !== 'left' && !m.down);
    for (const m of dirty) m.dirty = false;
    await Promise.all(
      dirty.map(async (m) => {
        try {
          const res = await request(`${m.origin}${INTERNAL_PREFIX}/flush`, {
            dispatcher: m.pool,
            method: 'POST',
            headers: { authorization: `Bearer ${this.secret}` },
            headersTimeout: 2000,
            bodyTimeout: 2000,
          });
          await res.body.dump();
        } catch {
          // A worker that cannot answer cannot flush either; its records come when it does.
        }
      }),
    );
  }

  override async list(opts: { function?: string; limit: number; status?: string }): Promise<Omit<InvocationRecord, 'logs'>[]> {
    await this.barrier();
    return super.list(opts);
  }

  override async listWithLogs(opts: { function: string; limit: number }): Promise<InvocationRecord[]> {
    await this.barrier();
    return super.listWithLogs(opts);
  }

  override async get(requestId: string): Promise<InvocationRecord | undefined> {
    await this.barrier();
    return super.get(requestId);
  }

  override async billing(since: string | null, until: string | null): Promise<BillingReport> {
    await this.barrier();
    return super.billing(since, until);
  }
}
