// Async calls and schedules in a cluster (PostgreSQL queue, two workers):
// 202 through the gateway, a schedule firing once per tick across workers, and
// a worker SIGKILLed while holding events: the other takes them over, none lost.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { sleep } from '../helpers/server.js';
import { adminCall, deployFn, startCluster, type TestCluster } from '../helpers/cluster.js';

async function enqueue(url: string, name: string, event: unknown): Promise<string> {
  const r = await fetch(`${url}/run/${name}`, { method: 'POST', body: JSON.stringify(event), headers: { 'x-lamina-invocation-type': 'Event' } });
  assert.equal(r.status, 202);
  return ((await r.json()) as { requestId: string }).requestId;
}

describe('async calls in a cluster', () => {
  let c: TestCluster;
  let db: pg.Client;
  before(async () => {
    c = await startCluster({ workers: [], env: { LAMINA_ASYNC_LEASE_MS: '1500', LAMINA_ASYNC_POLL_MS: '100', LAMINA_ASYNC_RETRY_BASE_MS: '50' } });
    // One at a time: two node processes starting at once on a loaded 2-core machine can pass the helper's 30 s.
    await c.startWorker('w1');
    await c.startWorker('w2');
    await c.waitForUp(['w1', 'w2']);
    db = new pg.Client({ connectionString: c.db.url });
    await db.connect();
  });
  after(async () => {
    await db?.end();
    await c?.stop();
  });

  const statuses = async (ids: string[]) => (await db.query('select request_id, status, owner, attempts, result from async_events where request_id = any($1)', [ids])).rows;

  test('202 through the gateway, run by a worker, record and queue through the gateway', async () => {
    await deployFn(c.gateway.url, 'echo', 'export const handler = async (e) => ({ e });');
    const id = await enqueue(c.gateway.url, 'echo', { a: 1 });
    let rec: any;
    const t0 = Date.now();
    for (let i = 0; i < 600; i++) {
      rec = (await adminCall(c.gateway.url, 'GET', `/invocations/${id}`)).body;
      if (rec?.status === 'Success') break;
      await sleep(100);
    }
    console.log(`# first async call in the cluster done after ${Date.now() - t0} ms`);
    assert.equal(rec.status, 'Success', JSON.stringify(rec));
    assert.deepEqual(rec.result, { e: { a: 1 } });
    assert.equal(rec.trigger, 'event');
    assert.ok(['w1', 'w2'].includes(rec.worker), rec.worker);
    const q = await adminCall(c.gateway.url, 'GET', '/queue');
    assert.equal(q.status, 200);
  });

  test('a schedule fires once per tick although both workers run a scheduler', async () => {
    await deployFn(c.gateway.url, 'tick', 'export const handler = async () => 1;', { schedules: [{ cron: '* * * * * *' }] });
    for (let i = 0; i < 600; i++) {
      const n = Number((await db.query(`select count(*) as n from schedule_ticks where function = 'tick'`)).rows[0].n);
      if (n >= 4) break;
      await sleep(100);
    }
    assert.equal((await adminCall(c.gateway.url, 'DELETE', '/functions/tick')).status, 200);
    await sleep(1500);
    const ticks = (await db.query(`select tick, request_id from schedule_ticks where function = 'tick'`)).rows;
    const events = (await db.query(`select request_id from async_events where function = 'tick' and trigger = 'schedule'`)).rows;
    assert.ok(ticks.length >= 4, `${ticks.length} ticks`);
    assert.equal(events.length, ticks.length, 'one event per tick');
    assert.deepEqual(new Set(events.map((e) => e.request_id)), new Set(ticks.map((t) => t.request_id)));
    const n = ticks.length;
    await sleep(2000);
    assert.equal(Number((await db.query(`select count(*) as n from schedule_ticks where function = 'tick'`)).rows[0].n), n, 'none after the delete');
  });

  test('SIGKILL of a worker holding events: the other takes them over and every event runs', async () => {
    await deployFn(c.gateway.url, 'job', 'export const handler = async (e) => { await new Promise((r) => setTimeout(r, 300)); return { n: e.n }; };', { concurrency: 4 });
    const ids = await Promise.all(Array.from({ length: 60 }, (_, n) => enqueue(c.gateway.url, 'job', { n })));
    // Wait until a worker holds events, then kill the one holding the most.
    let victim: string | undefined;
    for (let i = 0; i < 1200 && !victim; i++) {
      const owners = (await statuses(ids)).filter((r) => r.status === 'Running').map((r) => String(r.owner).split('/')[0]!);
      if (owners.length) victim = ['w1', 'w2'].sort((x, y) => owners.filter((o) => o === y).length - owners.filter((o) => o === x).length)[0];
      else await sleep(50);
    }
    assert.ok(victim, 'a worker ran events');
    const held = (await statuses(ids)).filter((r) => r.status === 'Running' && String(r.owner).startsWith(`${victim}/`)).map((r) => r.request_id);
    const killedAt = Date.now();
    c.workers.get(victim)!.proc.kill('SIGKILL');
    await c.workers.get(victim)!.exited;
    let takeoverMs = -1;
    let rows: any[] = [];
    for (let i = 0; i < 1200; i++) {
      rows = await statuses(ids);
      if (takeoverMs < 0 && held.length && rows.filter((r) => held.includes(r.request_id)).every((r) => r.status !== 'Running' || !String(r.owner).startsWith(`${victim}/`))) takeoverMs = Date.now() - killedAt;
      if (rows.every((r) => r.status === 'Success')) break;
      await sleep(100);
    }
    assert.equal(rows.length, 60);
    assert.deepEqual(rows.map((r) => r.status), Array(60).fill('Success'), 'zero events lost');
    assert.deepEqual(rows.map((r) => JSON.parse(r.result).n).sort((a: number, b: number) => a - b), Array.from({ length: 60 }, (_, i) => i));
    console.log(`# ${held.length} events held by the killed worker; taken over ${takeoverMs} ms after the kill`);
    assert.ok(held.length > 0);
  });
});
