// Asynchronous calls end to end on one node: 202 then the record, retries,
// destinations, expiry, the queue API and metrics.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { admin, deployCode, deployRaw, makeFunction, startServer, type TestServer } from '../helpers/server.js';
import { asyncCall, records, waitFor, waitRecord } from './helpers.js';

describe('async calls', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ tier: 'process', env: { LAMINA_ASYNC_RETRY_BASE_MS: '50', LAMINA_ASYNC_POLL_MS: '100' } });
    // A destination that returns what it received, so its record shows the destination record.
    await deployCode(s, 'sink', 'export const handler = async (e) => e;');
  });
  after(async () => {
    await s.stop();
  });

  test('202 with the request id, then Queued/Running gives way to Success with the result', async () => {
    await deployCode(s, 'echo', 'export const handler = async (e, c) => ({ got: e, id: c.requestId });', { http: { methods: ['POST', 'PUT'] } });
    const res = await asyncCall(s, 'echo', { n: 1 });
    assert.equal(res.status, 202);
    const body = (await res.json()) as { requestId: string };
    assert.match(body.requestId, /^[0-9a-f-]{36}$/);
    assert.equal(res.headers.get('x-lamina-request-id'), body.requestId);
    const rec = await waitRecord(s, body.requestId);
    assert.equal(rec.status, 'Success');
    assert.equal(rec.trigger, 'event');
    assert.equal(rec.attempts, 1);
    assert.deepEqual(rec.result, { got: { n: 1 }, id: body.requestId });
    assert.equal(rec.function, 'echo');
    assert.ok(rec.billedMs >= 1, 'the metering record is merged in');
    // A synchronous call's record says so.
    const sync = await fetch(`${s.url}/run/echo`, { method: 'POST', body: '{}' });
    const syncRec = await waitRecord(s, sync.headers.get('x-lamina-request-id')!);
    assert.equal(syncRec.trigger, 'http');
    assert.equal(syncRec.attempts, 1);
  });

  test('an async call to name:1 runs version 1, even after a newer one is current', async () => {
    await deployCode(s, 'vers', 'export const handler = async (e, c) => ({ v: "one", version: c.functionVersion });');
    await deployCode(s, 'vers', 'export const handler = async (e, c) => ({ v: "two", version: c.functionVersion });');
    const pinned = ((await (await asyncCall(s, 'vers:1', { n: 1 })).json()) as any).requestId;
    const current = ((await (await asyncCall(s, 'vers', { n: 2 })).json()) as any).requestId;
    const a = await waitRecord(s, pinned);
    assert.equal(a.status, 'Success');
    assert.deepEqual(a.result, { v: 'one', version: 1 });
    const b = await waitRecord(s, current);
    assert.deepEqual(b.result, { v: 'two', version: 2 });
    assert.equal((await asyncCall(s, 'vers:9', {})).status, 404, 'a version that does not exist is refused before anything is queued');
  });

  test('the synchronous checks come first: 404, 405, 400, 413; the header is case-insensitive', async () => {
    assert.equal((await asyncCall(s, 'nope', {})).status, 404);
    const r405 = await asyncCall(s, 'echo', undefined, { method: 'GET' });
    assert.equal(r405.status, 405);
    const r400 = await asyncCall(s, 'echo', undefined, { body: '{not json' });
    assert.equal(r400.status, 400);
    assert.equal(((await r400.json()) as any).error.type, 'BadRequest');
    const big = await asyncCall(s, 'echo', undefined, { body: JSON.stringify({ x: 'a'.repeat(7 * 1024 * 1024) }) });
    assert.equal(big.status, 413);
    const lower = await fetch(`${s.url}/run/echo`, { method: 'PUT', body: '{}', headers: { 'X-Lamina-Invocation-Type': 'event' } });
    assert.equal(lower.status, 202);
    const other = await fetch(`${s.url}/run/echo`, { method: 'POST', body: '{}', headers: { 'x-lamina-invocation-type': 'RequestResponse' } });
    assert.equal(other.status, 200, 'any other value is a synchronous call');
    // Nothing was queued for the refused calls.
    const q = await admin(s, 'GET', '/queue');
    assert.equal(q.body.functions.find((f: any) => f.function === 'nope'), undefined);
  });

  test('a failing event is retried `retries` times, then ends HandlerError; onFailure gets the AWS record', async () => {
    await deployCode(s, 'flaky', 'export const handler = async (e) => { throw new Error("boom " + e.n); };', { async: { retries: 2, onFailure: 'sink' } });
    const id = ((await (await asyncCall(s, 'flaky', { n: 7 })).json()) as any).requestId;
    const rec = await waitRecord(s, id);
    assert.equal(rec.status, 'HandlerError');
    assert.equal(rec.attempts, 3);
    assert.equal(rec.error.type, 'HandlerError');
    assert.match(rec.error.message, /boom 7/);
    // Every attempt is metered.
    const metered = (await records(s, 'flaky')).filter((r) => r.requestId.startsWith(id));
    assert.deepEqual(metered.map((r) => r.requestId).sort(), [id, `${id}#2`, `${id}#3`].sort());
    assert.ok(metered.every((r) => r.trigger === 'event' && r.status === 'HandlerError'));
    const dest = await waitFor('the destination call', async () => (await records(s, 'sink')).find((r) => r.status === 'Success' && r.trigger === 'event'));
    const d = await waitRecord(s, dest.requestId);
    const payload = d.result;
    assert.equal(payload.version, '1.0');
    assert.ok(!Number.isNaN(Date.parse(payload.timestamp)));
    assert.deepEqual(payload.requestContext, { requestId: id, functionName: 'flaky', condition: 'RetriesExhausted', approximateInvokeCount: 3 });
    assert.deepEqual(payload.requestPayload, { n: 7 });
    assert.deepEqual(payload.responseContext, { statusCode: 500, functionError: 'Unhandled' });
    assert.equal(payload.responsePayload.errorType, 'HandlerError');
    assert.match(payload.responsePayload.errorMessage, /boom 7/);
  });

  test('retries 0: one attempt; a later success stops the retries', async () => {
    await deployCode(s, 'once', 'export const handler = async () => { throw new Error("no"); };', { async: { retries: 0 } });
    const id = ((await (await asyncCall(s, 'once', {})).json()) as any).requestId;
    const rec = await waitRecord(s, id);
    assert.equal(rec.status, 'HandlerError');
    assert.equal(rec.attempts, 1);
    // Fails on its first attempt only (a module-level counter lives in the warm instance).
    await deployCode(s, 'second', 'let n = 0; export const handler = async () => { n++; if (n === 1) throw new Error("first"); return { n }; };', { concurrency: 1, async: { retries: 3 } });
    const id2 = ((await (await asyncCall(s, 'second', {})).json()) as any).requestId;
    const rec2 = await waitRecord(s, id2);
    assert.equal(rec2.status, 'Success');
    assert.equal(rec2.attempts, 2);
    assert.deepEqual(rec2.result, { n: 2 });
  });

  test('onSuccess gets the record; a destination call never triggers destinations itself', async () => {
    // loop's destinations point at itself: without the rule it would call itself forever.
    const loopDir = makeFunction({ 'index.mjs': 'export const handler = async (e) => ({ seen: e });' }, { name: 'loop', async: { onSuccess: 'loop', onFailure: 'loop' } }, 'loop');
    assert.equal((await deployRaw(s, loopDir, 'loop')).status, 201);
    const id = ((await (await asyncCall(s, 'loop', { a: 1 })).json()) as any).requestId;
    assert.equal((await waitRecord(s, id)).status, 'Success');
    const second = await waitFor('the destination call', async () => (await records(s, 'loop')).find((r) => r.requestId !== id));
    const d = await waitRecord(s, second.requestId);
    assert.equal(d.status, 'Success');
    const payload = d.result.seen;
    assert.equal(payload.requestContext.condition, 'Success');
    assert.equal(payload.requestContext.requestId, id);
    assert.equal(payload.requestContext.approximateInvokeCount, 1);
    assert.deepEqual(payload.responseContext, { statusCode: 200, functionError: null });
    assert.deepEqual(payload.responsePayload, { seen: { a: 1 } });
    assert.deepEqual(payload.requestPayload, { a: 1 });
    // Queue drained and no third call appeared (the destination's own success triggered nothing).
    await waitFor('an empty queue', async () => {
      const q = await admin(s, 'GET', '/queue');
      return !q.body.functions.some((f: any) => f.function === 'loop');
    });
    assert.equal((await records(s, 'loop')).length, 2);
  });

  test('bad async and schedules fields are refused at deploy with 400 naming the field', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ async: { retries: 11 } }, /"async.retries" must be an integer between 0 and 10/],
      [{ async: { maxEventAgeS: 59 } }, /"async.maxEventAgeS" must be an integer between 60 and 21600/],
      [{ async: { maxEventAgeS: 21601 } }, /"async.maxEventAgeS"/],
      [{ async: { onFailure: 'ghost' } }, /"async.onFailure" names function "ghost", which does not exist/],
      [{ async: { sometimes: 1 } }, /unknown field "async.sometimes"/],
      [{ schedules: [{ cron: 'every day' }] }, /"schedules\[0\]": invalid cron expression "every day"/],
      [{ schedules: [{ cron: '61 * * * *' }] }, /"schedules\[0\]": invalid cron expression/],
      [{ schedules: [{ cron: '* * * * * * *' }] }, /five fields .* or six/],
      [{ schedules: [{ cron: '* * * * *', timezone: 'Mars/Olympus' }] }, /"schedules\[0\]": unknown time zone "Mars\/Olympus"/],
      [{ schedules: [{ cron: '* * * * *', when: 1 }] }, /unknown field "schedules\[0\]\.when"/],
      [{ schedules: {} }, /"schedules" must be an array/],
    ];
    for (const [m, re] of cases) {
      const dir = makeFunction({ 'index.mjs': 'export const handler = async () => 1;' }, { name: 'bad', ...m }, 'bad');
      const r = await deployRaw(s, dir, 'bad');
      assert.equal(r.status, 400, `${JSON.stringify(m)}: ${r.text}`);
      assert.match(r.body.error.message, re, JSON.stringify(m));
    }
    assert.equal((await admin(s, 'GET', '/functions/bad')).status, 404);
  });

  test('GET /queue, GET /schedules and the Prometheus series', async () => {
    await deployCode(s, 'slow', 'export const handler = async () => { await new Promise((r) => setTimeout(r, 300)); return 1; };', { concurrency: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(((await (await asyncCall(s, 'slow', {})).json()) as any).requestId);
    const q = await admin(s, 'GET', '/queue');
    assert.equal(q.status, 200);
    const row = q.body.functions.find((f: any) => f.function === 'slow');
    assert.ok(row, JSON.stringify(q.body));
    assert.ok(row.depth + row.inflight >= 1 && row.depth + row.inflight <= 6, JSON.stringify(row));
    // The fairness rule: async work holds at most half of concurrency 2 = 1 instance.
    assert.ok(row.inflight <= 1, `in flight ${row.inflight}`);
    assert.ok(row.oldestAgeS >= 0);
    assert.ok(Array.isArray(q.body.schedules));
    assert.equal(q.body.total.depth, q.body.functions.reduce((n: number, f: any) => n + f.depth, 0));
    assert.deepEqual((await admin(s, 'GET', '/schedules')).body, { schedules: [] });
    const m = await fetch(`${s.url}/metrics`).then((r) => r.text());
    for (const name of ['lamina_async_queue_depth', 'lamina_async_oldest_age_seconds', 'lamina_async_inflight', 'lamina_async_retries_total', 'lamina_async_expired_total', 'lamina_schedule_firings_total']) {
      assert.ok(m.includes(name), `${name} in /metrics`);
    }
    assert.match(m, /lamina_async_retries_total\{function="flaky"\} 2/);
    for (const id of ids) assert.equal((await waitRecord(s, id)).status, 'Success');
    assert.equal((await admin(s, 'GET', '/queue')).body.functions.find((f: any) => f.function === 'slow'), undefined);
    assert.equal((await fetch(`${s.url}/api/v1/queue`)).status, 401);
  });
});
