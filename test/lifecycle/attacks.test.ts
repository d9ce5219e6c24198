// Issue 9, items 1, 2 and 4, performed against a real server on every tier:
// forged protocol frames, a result that is not JSON, a 100k-deep event and a
// flood of empty log frames. Each kills at most the attacking sandbox; the
// server, other functions and the attacked function's next call all work.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { admin, call, deployCode, invoke, startServer, testTiers, type TestServer } from '../helpers/server.js';

// Writes the event's payload to fd 3 (the protocol channel) the way a hostile handler can.
const FORGER = `
import fs from 'node:fs';
export async function handler(e) {
  if (e.payload) fs.writeSync(3, e.payload);
  if (e.flood) {
    // Whole frames only: the socket is non-blocking, so a write may be partial (or EAGAIN).
    const f = Buffer.from('{"t":"log","id":null,"stream":"stdout","data":""}\\n'.repeat(1000));
    let off = 0;
    for (;;) {
      try { off = (off + fs.writeSync(3, f, off)) % f.length; } catch { /* EAGAIN */ }
      await new Promise((r) => setImmediate(r));
    }
  }
  if (e.payload) await new Promise((r) => setTimeout(r, 3000));
  return 'survived';
}`;

// The isolate tier has no fd 3: its hostile output is a result that is not JSON.
const LIAR = `
export async function handler(e) {
  if (e.lie) JSON.stringify = () => 'this is not json {';
  if (e.flood) { for (;;) { for (let i = 0; i < 1000; i++) console.log(''); await new Promise((r) => setTimeout(r, 0)); } }
  return 'survived';
}`;

for (const tier of testTiers()) {
  describe(`protocol attacks [${tier}]`, () => {
    let s: TestServer;
    const attacker = tier === 'isolate' ? LIAR : FORGER;
    before(async () => {
      s = await startServer({ tier });
      await deployCode(s, 'attacker', attacker, { timeoutMs: 6000, sandbox: tier });
      // The flood runs until its timeout: long enough that only a stalled server misses it.
      await deployCode(s, 'flooder', attacker, { timeoutMs: 10_000, sandbox: tier });
      await deployCode(s, 'bystander', 'export async function handler(e) { return { echo: e.n }; }', { sandbox: tier });
    });
    after(async () => {
      await s.stop();
    });

    const stillServing = async () => {
      assert.equal((await call(`${s.url}/healthz`)).status, 200);
      const b = await invoke(s, 'bystander', { n: 7 });
      assert.equal(b.status, 200, b.text);
      assert.deepEqual(b.body, { echo: 7 });
      const again = await invoke(s, 'attacker', {});
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body, 'survived');
    };

    const attacks = tier === 'isolate' ? [{ lie: true }] : [{ payload: '{"t":"fatal"}\n' }, { payload: 'null\n' }, { payload: '{"t":"log","id":null,"data":5}\n' }, { payload: '{"t":"result","id":"forged","ok":true,"value":1}\n' }];
    for (const event of attacks) {
      test(`${JSON.stringify(event)}: 502 SandboxCrashed naming the violation; the server keeps serving`, async () => {
        const r = await invoke(s, 'attacker', event);
        assert.equal(r.status, 502, r.text);
        assert.equal(r.body.error.type, 'SandboxCrashed');
        assert.match(r.body.error.message, /protocol/);
        await stillServing();
      });
    }

    test('a 100k-deep JSON array is refused with 400, and frees nothing it never took', async () => {
      const deep = '['.repeat(100_000) + ']'.repeat(100_000);
      for (let i = 0; i < 8; i++) {
        const r = await invoke(s, 'bystander', undefined, { body: deep });
        assert.equal(r.status, 400, r.text);
        assert.equal(r.body.error.type, 'BadRequest');
        assert.match(r.body.error.message, /nested deeper than 128/);
      }
      // 128 levels are fine.
      const ok = await invoke(s, 'bystander', undefined, { body: '['.repeat(127) + '{"n":1}' + ']'.repeat(127) });
      assert.equal(ok.status, 200, ok.text);
      await stillServing();
      const w = (await admin(s, 'GET', '/worker')).body;
      const busy = w.functions.reduce((n: number, f: { busy: number }) => n + f.busy, 0);
      assert.equal(busy, 0, JSON.stringify(w));
    });

    test('a flood of empty log frames does not stall other functions', async () => {
      let floodDone: string | undefined;
      const flood = invoke(s, 'flooder', { flood: true }).then((r) => ((floodDone = `${r.status} ${r.text}`), r));
      // Wait until the flood runs (the bystander's instance is warm, so this is its own call).
      for (let i = 0; i < 5; i++) {
        const b = await invoke(s, 'bystander', { n: i });
        assert.equal(b.status, 200, b.text);
      }
      assert.equal(floodDone, undefined, 'the other function answered 5 calls while the flood ran');
      const r = await flood;
      assert.equal(r.status, 504, r.text);
      await stillServing();
    });
  });
}
