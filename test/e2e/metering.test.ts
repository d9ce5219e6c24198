// Metering: billed duration at the configured granularity, records, logs and the bill.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admin, deployCode, invoke, startServer } from '../helpers/server.js';

const TIMED = `
export async function handler(e) {
  console.log('starting', e.ms);
  console.error('to stderr');
  if (e.spin) { const t = performance.now(); while (performance.now() - t < e.ms) {} }
  else await new Promise((r) => setTimeout(r, e.ms));
  if (e.fail) throw new Error('failed on purpose');
  return { done: e.ms };
}`;

test('a 120 ms call bills 200 ms at the default 100 ms granularity, with a full record and logs', async () => {
  const s = await startServer();
  try {
    await deployCode(s, 'timed', TIMED, { memoryMb: 256 });
    await invoke(s, 'timed', { ms: 1 });
    const r = await invoke(s, 'timed', { ms: 120 });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-lamina-billed-ms'), '200');
    const duration = Number(r.headers.get('x-lamina-duration-ms'));
    assert.ok(duration >= 119 && duration < 200, `duration ${duration}`);

    const id = r.headers.get('x-lamina-request-id')!;
    const rec = (await admin(s, 'GET', `/invocations/${id}`)).body;
    assert.equal(rec.requestId, id);
    assert.equal(rec.function, 'timed');
    assert.equal(rec.version, 1);
    assert.equal(rec.billedMs, 200);
    assert.equal(rec.memoryMb, 256);
    assert.ok(Math.abs(rec.gbSeconds - (256 / 1024) * 0.2) < 1e-9, String(rec.gbSeconds));
    assert.equal(rec.cold, false);
    assert.equal(rec.status, 'Success');
    assert.ok(rec.maxMemoryMb > 0, `max memory ${rec.maxMemoryMb}`);
    assert.ok(!Number.isNaN(Date.parse(rec.startedAt)));
    assert.match(rec.logs, /starting 120/);
    assert.match(rec.logs, /to stderr/);
    assert.doesNotMatch(rec.logs, /starting 1\n/, 'logs of one call only');

    const failed = await invoke(s, 'timed', { ms: 5, fail: true });
    assert.equal(failed.status, 500);
    const list = (await admin(s, 'GET', '/invocations?function=timed&limit=10')).body.invocations;
    assert.equal(list.length, 3);
    assert.equal(list[0].status, 'HandlerError');
    assert.equal((await admin(s, 'GET', '/invocations?function=timed&limit=1')).body.invocations.length, 1);
    assert.equal((await admin(s, 'GET', '/invocations/nope')).status, 404);
    assert.equal((await admin(s, 'GET', '/invocations?limit=abc')).status, 400);

    const bill = (await admin(s, 'GET', '/billing')).body;
    const line = bill.functions.find((f: { function: string }) => f.function === 'timed');
    assert.equal(line.invocations, 3);
    assert.equal(line.errors, 1);
    assert.equal(line.coldStarts, 1);
    assert.ok(line.cost.total > 0);
    const future = (await admin(s, 'GET', `/billing?since=${new Date(Date.now() + 60_000).toISOString()}`)).body;
    assert.equal(future.functions.length, 0);
    assert.equal((await admin(s, 'GET', '/billing?since=yesterday-ish')).status, 400);
  } finally {
    await s.stop();
  }
});

test('at 1 ms granularity a 120 ms call bills its duration to the nearest ms', async () => {
  const s = await startServer({ args: ['--billing-granularity', '1'] });
  try {
    await deployCode(s, 'timed', TIMED);
    await invoke(s, 'timed', { ms: 1 });
    // A busy 120 ms call cannot end early; it can end late when the machine is
    // loaded (the sandbox is preempted), so check the rule rather than the clock.
    const spun = await invoke(s, 'timed', { ms: 120, spin: true });
    const billed = Number(spun.headers.get('x-lamina-billed-ms'));
    const spunMs = Number(spun.headers.get('x-lamina-duration-ms'));
    assert.ok(spunMs >= 120, `duration ${spunMs}`);
    assert.equal(billed, Math.round(spunMs), `billed ${billed} for duration ${spunMs}`);
    // A 120 ms sleep: the timer may fire a little late on a loaded machine, so
    // check the rule (nearest ms) rather than the clock.
    const slept = await invoke(s, 'timed', { ms: 120 });
    const duration = Number(slept.headers.get('x-lamina-duration-ms'));
    assert.ok(duration >= 119, `duration ${duration}`);
    assert.equal(Number(slept.headers.get('x-lamina-billed-ms')), Math.round(duration));
  } finally {
    await s.stop();
  }
});
