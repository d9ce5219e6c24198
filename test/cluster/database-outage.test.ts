// A cluster gateway while its PostgreSQL is down (found by the cluster soak,
// which restarts it): the gateway keeps running; an async call it cannot commit
// is refused with 503 ServiceUnavailable, a retryable answer that says why (it
// was a 500 InternalError), and nothing is accepted; once the database is back,
// async calls are accepted again. Runs on a PostgreSQL of its own, never the
// shared one.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { SECRET, TOKEN, spawnLamina, type Proc } from '../helpers/cluster.js';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres.js';
import { deploy, makeFunction } from '../helpers/server.js';

let db: PrivatePostgres;
let gw: Proc;
let base: string;
before(async () => {
  db = await startPrivatePostgres();
  base = mkdtempSync(path.join(os.tmpdir(), 'lamina-dbout-'));
  gw = await spawnLamina('gateway', ['--port', '0', '--data-dir', path.join(base, 'gw')], { LAMINA_DATABASE_URL: db.url, LAMINA_TOKEN: TOKEN, LAMINA_CLUSTER_SECRET: SECRET, LAMINA_LOG_LEVEL: 'warn' });
  const dir = makeFunction({ 'index.mjs': 'export const handler = async () => 1;' }, { name: 'later' }, 'later');
  try {
    await deploy({ url: gw.url, token: TOKEN } as never, dir, 'later');
  } finally {
    rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});
after(async () => {
  await gw?.stop();
  await db?.stop();
  if (base) rmSync(base, { recursive: true, force: true });
});

const enqueue = () => fetch(`${gw.url}/run/later`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-lamina-invocation-type': 'Event' } });

test('an async call while the database is down: 503 ServiceUnavailable, the gateway lives on, and accepts again once it is back', async () => {
  assert.equal((await enqueue()).status, 202);
  await db.down();
  try {
    const r = await enqueue();
    const body = (await r.json()) as { error: { type: string; message: string } };
    assert.equal(r.status, 503, JSON.stringify(body));
    assert.equal(body.error.type, 'ServiceUnavailable');
    assert.match(body.error.message, /database/);
    assert.equal(gw.proc.exitCode, null, 'the gateway is still running');
  } finally {
    await db.up();
  }
  // The pool reconnects on the next query (a first one may still meet a connection cut by the shutdown).
  let status = 0;
  for (let i = 0; i < 20 && status !== 202; i++) {
    status = (await enqueue()).status;
    if (status !== 202) await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(status, 202);
  assert.equal(gw.proc.exitCode, null);
});
