// Nothing assumes localhost: three workers, each in its own network namespace
// with an address of its own (veth pairs, 10.x.i.2), register with a gateway
// on the host (10.x.i.1), advertise their own addresses, and serve calls the
// gateway routes to them. PostgreSQL listens on loopback only, so each
// namespace reaches it through a small TCP relay on its host-side address.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HashRing } from '../../src/cluster/ring.js';
import { SECRET, TOKEN, adminCall, run, spawnLamina, type Proc } from '../helpers/cluster.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { deploy, makeFunction, sleep } from '../helpers/server.js';

function sh(args: string[]): void {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr || r.error?.message}`);
}

interface Ns {
  name: string;
  hostIf: string;
  hostAddr: string;
  nsAddr: string;
}

/** A relay from host:port to PostgreSQL on loopback. */
function relay(host: string, pgPort: number): Promise<net.Server> {
  const server = net.createServer((c) => {
    const up = net.connect(pgPort, '127.0.0.1');
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  return new Promise((resolve, reject) => server.listen(0, host, () => resolve(server)).once('error', reject));
}

describe('cluster across network namespaces', () => {
  const tag = randomBytes(2).toString('hex');
  const net2 = randomInt(100, 250);
  const spaces: Ns[] = [1, 2, 3].map((i) => ({ name: `lamina-${tag}-${i}`, hostIf: `lm${tag}${i}h`, hostAddr: `10.${net2}.${i}.1`, nsAddr: `10.${net2}.${i}.2` }));
  const relays: net.Server[] = [];
  const workers: Proc[] = [];
  let gateway: Proc | undefined;
  let db: TestDatabase;
  const base = mkdtempSync(path.join(os.tmpdir(), 'lamina-netns-'));
  const ids = ['n1', 'n2', 'n3'];

  before(async () => {
    db = await createTestDatabase('lamina_netns');
    const pgPort = Number(new URL(db.url).port || 5432);
    for (const [i, s] of spaces.entries()) {
      sh(['ip', 'netns', 'add', s.name]);
      sh(['ip', 'link', 'add', s.hostIf, 'type', 'veth', 'peer', 'name', `lm${tag}${i + 1}n`]);
      sh(['ip', 'link', 'set', `lm${tag}${i + 1}n`, 'netns', s.name]);
      sh(['ip', 'addr', 'add', `${s.hostAddr}/24`, 'dev', s.hostIf]);
      sh(['ip', 'link', 'set', s.hostIf, 'up']);
      sh(['ip', 'netns', 'exec', s.name, 'ip', 'addr', 'add', `${s.nsAddr}/24`, 'dev', `lm${tag}${i + 1}n`]);
      sh(['ip', 'netns', 'exec', s.name, 'ip', 'link', 'set', `lm${tag}${i + 1}n`, 'up']);
      sh(['ip', 'netns', 'exec', s.name, 'ip', 'link', 'set', 'lo', 'up']);
      relays.push(await relay(s.hostAddr, pgPort));
    }
    const env = { LAMINA_DATABASE_URL: db.url, LAMINA_TOKEN: TOKEN, LAMINA_CLUSTER_SECRET: SECRET, LAMINA_HEARTBEAT_MS: '200', LAMINA_HEARTBEAT_TIMEOUT_MS: '1000' };
    gateway = await spawnLamina('gateway', ['--host', '0.0.0.0', '--port', '0', '--data-dir', path.join(base, 'gw')], env);
    const port = new URL(gateway.url).port;
    for (const [i, s] of spaces.entries()) {
      const dbUrl = new URL(db.url);
      dbUrl.hostname = s.hostAddr;
      dbUrl.port = String((relays[i]!.address() as net.AddressInfo).port);
      workers.push(
        await spawnLamina(
          'worker',
          ['--gateway', `http://${s.hostAddr}:${port}`, '--host', s.nsAddr, '--port', '0', '--id', ids[i]!, '--data-dir', path.join(base, ids[i]!), '--sandbox', 'process', '--pool-size', '1'],
          { ...env, LAMINA_DATABASE_URL: dbUrl.toString() },
          ['ip', 'netns', 'exec', s.name],
        ),
      );
    }
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await gateway?.stop();
    for (const r of relays) r.close();
    for (const s of spaces) {
      spawnSync('ip', ['link', 'del', s.hostIf]);
      spawnSync('ip', ['netns', 'del', s.name]);
    }
    await db?.drop().catch(() => undefined);
    rmSync(base, { recursive: true, force: true });
  });

  test('workers register with their own addresses and run the calls routed to them', async () => {
    for (const [i, w] of workers.entries()) assert.match(w.url, new RegExp(`^http://${spaces[i]!.nsAddr.replace(/\./g, '\\.')}:\\d+$`));
    let view: any;
    for (let i = 0; i < 100; i++) {
      view = (await adminCall(gateway!.url, 'GET', '/workers')).body;
      if (view.workers.filter((w: { state: string }) => w.state === 'up').length === 3) break;
      await sleep(100);
    }
    assert.deepEqual(
      view.workers.map((w: { id: string; url: string; state: string }) => [w.id, new URL(w.url).hostname, w.state]),
      ids.map((id, i) => [id, spaces[i]!.nsAddr, 'up']),
    );

    const ring = new HashRing(ids);
    const names = ids.map((w) => {
      for (let i = 0; ; i++) if (ring.home(`ns-${i}`) === w) return `ns-${i}`;
    });
    for (const name of names) {
      const dir = makeFunction({ 'index.mjs': 'export async function handler(e) { await new Promise((r) => setTimeout(r, e.ms ?? 0)); return { ok: true }; }' }, { name }, name);
      await deploy({ url: gateway!.url, token: TOKEN } as never, dir, name);
      rmSync(path.dirname(dir), { recursive: true, force: true });
    }
    for (const name of names) {
      for (let k = 0; k < 3; k++) {
        const r = await run(gateway!.url, name, {});
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers.get('x-lamina-worker'), ring.home(name));
      }
    }
    const burst = await Promise.all(Array.from({ length: 12 }, () => run(gateway!.url, names[0]!, { ms: 500 })));
    assert.ok(burst.every((r) => r.status === 200), burst.map((r) => `${r.status} ${r.text.slice(0, 200)}`).join('; '));
    assert.ok(new Set(burst.map((r) => r.headers.get('x-lamina-worker'))).size >= 2);
    // Their records reached PostgreSQL through the namespaces' own routes.
    const inv = await adminCall(gateway!.url, 'GET', `/invocations?function=${names[1]}`);
    assert.equal(inv.body.invocations.length, 3);
    assert.equal(inv.body.invocations[0].worker, ring.home(names[1]!));
  });
});
