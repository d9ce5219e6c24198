// `lamina invoke --async`, `lamina queue` and `lamina schedules` against a real server.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { CLI, deployCode, startServer, type TestServer } from '../helpers/server.js';
import { waitRecord } from './helpers.js';

function lamina(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

describe('async CLI', () => {
  let s: TestServer;
  let env: Record<string, string>;
  before(async () => {
    s = await startServer({ tier: 'process' });
    env = { LAMINA_URL: s.url, LAMINA_TOKEN: s.token };
    await deployCode(s, 'clock', 'export const handler = async (e) => ({ twice: e.n * 2 });', { schedules: [{ cron: '0 12 * * 1', timezone: 'Asia/Tokyo' }] });
  });
  after(async () => {
    await s.stop();
  });

  test('invoke --async prints the request id; the call then succeeds', async () => {
    const r = await lamina(['invoke', 'clock', '--async', '--data', '{"n":21}'], env);
    assert.equal(r.code, 0, r.err);
    const { requestId } = JSON.parse(r.out);
    const rec = await waitRecord(s, requestId);
    assert.equal(rec.status, 'Success');
    assert.deepEqual(rec.result, { twice: 42 });
    const missing = await lamina(['invoke', 'ghost', '--async'], env);
    assert.notEqual(missing.code, 0);
    assert.match(missing.err, /FunctionNotFound/);
  });

  test('queue and schedules print tables (and JSON)', async () => {
    const q = await lamina(['queue'], env);
    assert.equal(q.code, 0, q.err);
    assert.match(q.out, /next schedule firings:/);
    assert.match(q.out, /clock\s+0 12 \* \* 1\s+Asia\/Tokyo\s+\d{4}-\d\d-\d\dT03:00:00\.000Z/);
    const sch = await lamina(['schedules', '--json'], env);
    assert.equal(sch.code, 0, sch.err);
    assert.equal(JSON.parse(sch.out)[0].function, 'clock');
    for (const cmd of ['queue', 'schedules']) assert.equal((await lamina([cmd, '--help'])).code, 0);
    const bad = await lamina(['queue'], { LAMINA_URL: s.url, LAMINA_TOKEN: 'wrong' });
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /Unauthorized/);
  });
});
