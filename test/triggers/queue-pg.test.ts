// The queue on PostgreSQL: concurrent claimers never take the same event
// (FOR UPDATE SKIP LOCKED), leases that run out are taken over with the
// attempt given back, and group-committed accepts survive one bad row.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openPostgres } from '../../src/store/postgres.js';
import type { Db } from '../../src/store/db.js';
import { AsyncQueue } from '../../src/triggers/queue.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let pgdb: TestDatabase;
let dbs: Db[] = [];
before(async () => {
  pgdb = await createTestDatabase('lamina_queue');
  dbs = [await openPostgres(pgdb.url, { poolSize: 4 }), await openPostgres(pgdb.url, { poolSize: 4 })];
});
after(async () => {
  for (const d of dbs) await d.close();
  await pgdb?.drop();
});

test('claims from two pools at once never overlap; every event is claimed once', async () => {
  const q = new AsyncQueue(dbs[0]!);
  const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => q.enqueue({ function: i % 2 ? 'a' : 'b', event: { i } })));
  assert.equal(new Set(ids).size, 300);
  const queues = [new AsyncQueue(dbs[0]!), new AsyncQueue(dbs[1]!)];
  const seen = new Map<string, string>();
  await Promise.all(
    Array.from({ length: 8 }, async (_, k) => {
      const owner = `o${k}`;
      for (;;) {
        const got = await queues[k % 2]!.claim(owner, 7, 60_000, [], k % 3 === 0 ? ['a'] : []);
        if (got.length === 0) break;
        for (const e of got) {
          assert.ok(!seen.has(e.requestId), `${e.requestId} claimed twice`);
          seen.set(e.requestId, owner);
          assert.equal(e.attempts, 1);
        }
      }
    }),
  );
  assert.equal(seen.size, 300);
});

test('an expired lease is taken over with its attempt given back; a finish by the old owner is then ignored', async () => {
  const q = new AsyncQueue(dbs[0]!);
  const id = await q.enqueue({ function: 'lease', event: {} });
  const [ev] = await q.claim('dead', 10, 1, [], ['lease']);
  assert.equal(ev?.requestId, id);
  await new Promise((r) => setTimeout(r, 20));
  assert.ok((await q.takeOver()) >= 1);
  const view = await q.get(id);
  assert.equal(view?.status, 'Queued');
  assert.equal(view?.attempts, 0);
  const [again] = await q.claim('alive', 10, 60_000, [], ['lease']);
  assert.equal(again?.requestId, id);
  assert.equal(again?.attempts, 1);
  assert.equal(await q.finish(ev!, 'dead', { status: 'Success', result: 'stale' }), false);
  assert.equal(await q.finish(again!, 'alive', { status: 'Success', result: 'fresh', followUp: { function: 'dest', event: { x: 1 } } }), true);
  assert.deepEqual((await q.get(id))?.result, 'fresh');
  const stats = await q.stats();
  assert.equal(stats.find((s) => s.function === 'dest')?.depth, 1, 'the follow-up was enqueued with the finish');
});

test('a duplicate request id fails alone; the rest of its group commits', async () => {
  const q = new AsyncQueue(dbs[0]!);
  await q.enqueue({ function: 'dup', event: {}, requestId: 'same-id' });
  const results = await Promise.allSettled([q.enqueue({ function: 'dup', event: {}, requestId: 'same-id' }), q.enqueue({ function: 'dup', event: {} }), q.enqueue({ function: 'dup', event: {} })]);
  assert.equal(results[0]!.status, 'rejected');
  assert.equal(results[1]!.status, 'fulfilled');
  assert.equal(results[2]!.status, 'fulfilled');
  assert.equal((await q.stats()).find((s) => s.function === 'dup')?.depth, 3);
});
