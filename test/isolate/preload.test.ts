// Isolate preload at deploy (issue 15): a deploy loads one isolate of the new
// version before it answers, so the first call is warm; a redeploy swaps it for
// the new version's, a delete releases it, the keep-alive reaps it, and it never
// takes memory from others. Real servers, real HTTP.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { admin, deployCode, invoke, sleep, startServer, type TestServer } from '../helpers/server.js';

const ISO = { sandbox: 'isolate' } as const;
const VERSIONED = (v: string) => `console.log('top-level ${v}'); export async function handler(e, c) { return { v: ${JSON.stringify(v)}, cold: c.coldStart }; }`;

interface FunctionInfo {
  instances: { id: string; version: number; state: string; calls: number }[];
}
const describeFn = async (s: TestServer, name: string): Promise<FunctionInfo> => (await admin(s, 'GET', `/functions/${name}`)).body as FunctionInfo;
const reservedMb = async (s: TestServer): Promise<number> => (await admin(s, 'GET', '/worker')).body.memory.reservedMb as number;

describe('isolate preload at deploy (default on)', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ tier: 'isolate' });
  });
  after(async () => {
    await s.stop();
  });

  test('the deploy answers with an instance ready; the first call is warm, honestly recorded, with the top-level logs', async () => {
    await deployCode(s, 'pre', VERSIONED('one'), ISO);
    const before = await describeFn(s, 'pre');
    assert.equal(before.instances.length, 1, JSON.stringify(before));
    assert.equal(before.instances[0]!.state, 'ready');
    assert.equal(before.instances[0]!.calls, 0);
    const r = await invoke(s, 'pre', {});
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { v: 'one', cold: false });
    assert.equal(r.headers.get('x-lamina-cold-start'), '0');
    assert.equal(r.headers.get('x-lamina-instance'), before.instances[0]!.id);
    const rec = (await admin(s, 'GET', `/invocations/${r.headers.get('x-lamina-request-id')}`)).body;
    assert.equal(rec.cold, false);
    assert.equal(rec.initMs, null);
    // Output of the top-level run (at deploy) goes with the first call, as on a cold start.
    assert.match(rec.logs, /top-level one/);
  });

  test('a redeploy preloads the new version and retires the old one; a delete releases it', async () => {
    await deployCode(s, 'roll', VERSIONED('one'), ISO);
    assert.equal((await invoke(s, 'roll', {})).body.v, 'one');
    const reservedBefore = await reservedMb(s);
    await deployCode(s, 'roll', VERSIONED('two'), ISO);
    const info = await describeFn(s, 'roll');
    assert.deepEqual(info.instances.map((i) => [i.version, i.state, i.calls]), [[2, 'ready', 0]], JSON.stringify(info));
    assert.equal(await reservedMb(s), reservedBefore, 'the old version\'s memory went back before the new one took its own');
    const r = await invoke(s, 'roll', {});
    assert.deepEqual(r.body, { v: 'two', cold: false });
    assert.equal(r.headers.get('x-lamina-cold-start'), '0');
    assert.equal((await admin(s, 'DELETE', '/functions/roll')).status, 200);
    assert.equal(await reservedMb(s), reservedBefore - 128);
    assert.equal((await invoke(s, 'roll', {})).status, 404);
  });

  test('code that throws at the top level: the deploy succeeds, the first call gets the load error', async () => {
    await deployCode(s, 'broken', "throw new Error('no config at load'); export const handler = async () => 1;", ISO);
    assert.equal((await describeFn(s, 'broken')).instances.length, 0, 'the failed preload left nothing behind');
    const r = await invoke(s, 'broken', {});
    assert.equal(r.status, 500, r.text);
    assert.equal(r.body.error.type, 'HandlerError');
    assert.match(r.body.error.message, /failed to initialize: no config at load/);
  });

  test('a fetch handler preloaded: its first call is warm and served as fetch', async () => {
    await deployCode(s, 'web', "export default { async fetch(req) { return new Response('hi ' + new URL(req.url).pathname); } };", ISO);
    const r = await invoke(s, 'web', {});
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'hi /run/web');
    assert.equal(r.headers.get('x-lamina-cold-start'), '0');
  });
});

test('LAMINA_ISOLATE_PRELOAD=0: nothing loads at deploy, the first call is a cold start', async () => {
  const s = await startServer({ tier: 'isolate', env: { LAMINA_ISOLATE_PRELOAD: '0' } });
  try {
    await deployCode(s, 'lazy', VERSIONED('one'), ISO);
    assert.equal((await describeFn(s, 'lazy')).instances.length, 0);
    const r = await invoke(s, 'lazy', {});
    assert.deepEqual(r.body, { v: 'one', cold: true });
    assert.equal(r.headers.get('x-lamina-cold-start'), '1');
  } finally {
    await s.stop();
  }
});

test('a wrong LAMINA_ISOLATE_PRELOAD stops the server with a clear message', async () => {
  await assert.rejects(startServer({ tier: 'isolate', env: { LAMINA_ISOLATE_PRELOAD: 'yes' } }), /LAMINA_ISOLATE_PRELOAD must be 0 or 1/);
});

test('a preload only takes free memory (no eviction) and the keep-alive reaps it', async () => {
  const s = await startServer({ tier: 'isolate', args: ['--memory-budget', '128', '--keep-alive', '1500'] });
  try {
    await deployCode(s, 'a', VERSIONED('a'), ISO);
    assert.equal((await invoke(s, 'a', {})).headers.get('x-lamina-cold-start'), '0');
    // The budget is full of a's instance: b's preload is skipped, a stays warm.
    await deployCode(s, 'b', VERSIONED('b'), ISO);
    assert.equal((await describeFn(s, 'b')).instances.length, 0);
    assert.equal((await describeFn(s, 'a')).instances.length, 1);
    // b's first call evicts idle a, as any cold start does.
    const b = await invoke(s, 'b', {});
    assert.equal(b.status, 200, b.text);
    assert.equal(b.headers.get('x-lamina-cold-start'), '1');
    // Idle past the keep-alive, an instance (preloaded or not) is stopped.
    for (let i = 0; i < 50 && (await describeFn(s, 'b')).instances.length > 0; i++) await sleep(200);
    assert.equal((await describeFn(s, 'b')).instances.length, 0);
    await deployCode(s, 'c', VERSIONED('c'), ISO);
    assert.equal((await describeFn(s, 'c')).instances.length, 1, 'memory freed by the reaper is free for a preload');
    for (let i = 0; i < 50 && (await describeFn(s, 'c')).instances.length > 0; i++) await sleep(200);
    assert.equal((await describeFn(s, 'c')).instances.length, 0, 'a preloaded instance nobody calls is reaped too');
  } finally {
    await s.stop();
  }
});
