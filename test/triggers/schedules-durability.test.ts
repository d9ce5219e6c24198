// Schedules and durability on a real `lamina up`: firings over a window and
// none after deletion; events accepted before a kill -9 all run after the
// restart; an event older than maxEventAgeS expires into onFailure.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { admin, deployCode, sleep, startServer } from '../helpers/server.js';
import { asyncCall, records, waitFor, waitRecord } from './helpers.js';

const ENV = { LAMINA_ASYNC_RETRY_BASE_MS: '50', LAMINA_ASYNC_POLL_MS: '100' };

describe('schedules and durability', () => {
  test('a schedule fires once per tick over a window, shows in GET /queue, and stops when the function is deleted', async () => {
    const s = await startServer({ tier: 'process', env: ENV });
    try {
      await deployCode(s, 'cronfn', 'export const handler = async (e) => e;', { schedules: [{ cron: '* * * * * *', event: { from: 'cron' } }, { cron: '0 0 1 1 *', timezone: 'Europe/Paris' }] });
      const q = await admin(s, 'GET', '/queue');
      assert.equal(q.body.schedules.length, 2);
      const yearly = q.body.schedules.find((x: any) => x.cron === '0 0 1 1 *');
      assert.equal(yearly.timezone, 'Europe/Paris');
      assert.match(yearly.next, /-12-31T23:00:00\.000Z$/, 'midnight in Paris is 23:00 UTC in winter');
      const started = Date.now();
      const fired = await waitFor('3 firings', async () => {
        const list = (await records(s, 'cronfn')).filter((r) => r.trigger === 'schedule');
        return list.length >= 3 && list;
      });
      const windowS = (Date.now() - started) / 1000;
      assert.ok(fired.length <= Math.ceil(windowS) + 1, `${fired.length} firings in ${windowS} s`);
      const one = await waitRecord(s, fired[0].requestId);
      assert.equal(one.trigger, 'schedule');
      assert.deepEqual(one.result, { from: 'cron' });
      assert.equal((await admin(s, 'DELETE', '/functions/cronfn')).status, 200);
      assert.deepEqual((await admin(s, 'GET', '/schedules')).body.schedules, []);
      await sleep(300); // a tick already committed may still run
      const before = (await records(s, 'cronfn')).length;
      const queued = (await admin(s, 'GET', '/queue')).body.functions.find((f: any) => f.function === 'cronfn');
      await sleep(2500);
      const afterCount = (await records(s, 'cronfn')).length;
      assert.ok(afterCount <= before + (queued ? queued.depth + queued.inflight : 0), `no firings after deletion (${before} -> ${afterCount})`);
      const m = await fetch(`${s.url}/metrics`).then((r) => r.text());
      assert.match(m, /lamina_schedule_firings_total\{function="cronfn"\} [1-9]/);
    } finally {
      await s.stop();
    }
  });

  test('every event accepted before a kill -9 runs after the restart', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lamina-async-kill-'));
    try {
      let s = await startServer({ tier: 'process', env: ENV, dataDir });
      // Slow and narrow, so most events are still queued or running at the kill.
      await deployCode(s, 'work', 'export const handler = async (e) => { await new Promise((r) => setTimeout(r, 200)); return { n: e.n }; };', { concurrency: 2 });
      const ids: string[] = [];
      await Promise.all(
        Array.from({ length: 40 }, async (_, n) => {
          const r = await asyncCall(s, 'work', { n });
          assert.equal(r.status, 202);
          ids.push(((await r.json()) as any).requestId);
        }),
      );
      await s.stop('SIGKILL');
      s = await startServer({ tier: 'process', env: ENV, dataDir });
      try {
        const finals = await Promise.all(ids.map((id) => waitRecord(s, id, undefined, 120_000)));
        assert.equal(finals.length, 40);
        assert.deepEqual(finals.map((r) => r.status), Array(40).fill('Success'), 'every accepted event ran');
        assert.deepEqual(finals.map((r) => r.result.n).sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i));
        assert.ok(s.output().includes('will run again') || finals.every((r) => r.attempts === 1));
      } finally {
        await s.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('an event older than maxEventAgeS expires and its onFailure destination says EventAgeExceeded', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lamina-async-age-'));
    try {
      let s = await startServer({ tier: 'process', env: ENV, dataDir });
      await deployCode(s, 'sink', 'export const handler = async (e) => e;');
      await deployCode(s, 'late', 'export const handler = async () => "ran";', { async: { maxEventAgeS: 60, onFailure: 'sink' } });
      await s.stop();
      // Accepted 2 minutes ago, while the server was down: older than 60 s when the server comes back.
      const db = new SQLite(path.join(dataDir, 'lamina.db'));
      const old = Date.now() - 120_000;
      db.prepare(`insert into async_events (request_id, function, event, trigger, status, attempts, enqueued_at, available_at, no_destinations) values ('old-1', 'late', '{"x":1}', 'event', 'Queued', 0, ?, ?, 0)`).run(old, old);
      db.close();
      s = await startServer({ tier: 'process', env: ENV, dataDir });
      try {
        const rec = await waitRecord(s, 'old-1');
        assert.equal(rec.status, 'Expired');
        assert.equal(rec.attempts, 0);
        assert.equal(rec.error.type, 'Expired');
        const dest = await waitFor('the destination call', async () => (await records(s, 'sink')).find((r) => r.trigger === 'event'));
        const d = (await waitRecord(s, dest.requestId)).result;
        assert.equal(d.requestContext.condition, 'EventAgeExceeded');
        assert.equal(d.requestContext.requestId, 'old-1');
        assert.equal(d.requestContext.approximateInvokeCount, 0);
        assert.deepEqual(d.requestPayload, { x: 1 });
        assert.equal((await records(s, 'late')).length, 0, 'the expired event never ran');
        assert.match(await fetch(`${s.url}/metrics`).then((r) => r.text()), /lamina_async_expired_total\{function="late"\} 1/);
      } finally {
        await s.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
