// A real cluster: one `lamina gateway` and three `lamina worker` processes on
// a fresh PostgreSQL database. Deploy once through the gateway; sticky homes;
// bursts spilling over; cluster-wide records, logs and bill; drain; a second
// gateway; SIGKILL of a worker under load and its return; no worker at all.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HashRing, boundedCapacity } from '../../src/cluster/ring.js';
import { CLI, call, deploy, isAlive, makeFunction, sleep, type Reply } from '../helpers/server.js';
import { SECRET, TOKEN, adminCall, run, spawnLamina, startCluster, type Proc, type TestCluster } from '../helpers/cluster.js';

const IDS = ['w1', 'w2', 'w3'];
const ring = new HashRing(IDS);

function lamina(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Deploys a one-file function through the gateway's admin API. */
async function deployFn(url: string, name: string, code: string, manifest: Record<string, unknown> = {}): Promise<{ version: number; codeHash: string }> {
  const dir = makeFunction({ 'index.mjs': code }, { name, ...manifest }, name);
  try {
    return await deploy({ url, token: TOKEN } as never, dir, name);
  } finally {
    rmSync(path.dirname(dir), { recursive: true, force: true });
  }
}

const SLEEPER = 'export async function handler(e) { await new Promise((r) => setTimeout(r, e.ms ?? 0)); console.log("ran", e.tag ?? ""); return { ok: true }; }';

/** A function name whose home (on the three-worker ring) is `home`. */
function nameHomedOn(home: string, prefix: string): string {
  for (let i = 0; ; i++) if (ring.home(`${prefix}${i}`) === home) return `${prefix}${i}`;
}

const workerOf = (r: Reply) => r.headers.get('x-lamina-worker');

describe('cluster: one gateway, three workers', () => {
  let c: TestCluster;
  let env: Record<string, string>;
  before(async () => {
    c = await startCluster({ workers: IDS });
    env = { LAMINA_URL: c.gateway.url, LAMINA_TOKEN: TOKEN };
  });
  after(async () => {
    await c?.stop();
  });

  test('health, auth on internal routes, and a deploy through the gateway', async () => {
    const h = await call(`${c.gateway.url}/healthz`);
    assert.equal(h.status, 200);
    assert.deepEqual(h.body.workers, { up: 3, known: 3 });
    // The internal API is closed without the cluster secret, on both sides.
    const reg = await call(`${c.gateway.url}/internal/v1/workers/register`, { method: 'POST', body: '{}' });
    assert.equal(reg.status, 401);
    const reg2 = await call(`${c.gateway.url}/internal/v1/workers/register`, { method: 'POST', body: '{}', headers: { authorization: `Bearer ${TOKEN}x` } });
    assert.equal(reg2.status, 401);
    const view = await c.workersView();
    const w1 = view.workers.find((w: { id: string }) => w.id === 'w1');
    const inv = await call(`${w1.url}/internal/v1/invoke/x`, { method: 'POST', body: '{}' });
    assert.equal(inv.status, 401);
    const ping = await call(`${w1.url}/internal/v1/ping`, { headers: { authorization: `Bearer ${SECRET}` } });
    assert.equal(ping.status, 200);
    assert.equal(ping.body.id, 'w1');

    const v = await deployFn(c.gateway.url, 'greet', 'export const handler = async (e) => ({ hi: e.name });');
    assert.equal(v.version, 1);
    const ls = await adminCall(c.gateway.url, 'GET', '/functions');
    assert.deepEqual(ls.body.functions.map((f: { name: string }) => f.name), ['greet']);
    const r = await run(c.gateway.url, 'greet', { name: 'Ada' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { hi: 'Ada' });
    assert.ok(IDS.includes(workerOf(r)!), `x-lamina-worker names a worker: ${workerOf(r)}`);
    assert.equal((await run(c.gateway.url, 'nope')).status, 404);
  });

  test("a function's sequential calls land on its home worker and stay warm there", async () => {
    const names = IDS.map((w) => nameHomedOn(w, 'seq-'));
    for (const name of names) await deployFn(c.gateway.url, name, SLEEPER);
    for (const name of names) {
      const replies: Reply[] = [];
      for (let i = 0; i < 8; i++) replies.push(await run(c.gateway.url, name, {}));
      for (const r of replies) assert.equal(r.status, 200, r.text);
      const workers = new Set(replies.map(workerOf));
      assert.deepEqual([...workers], [ring.home(name)], `${name} always ran on its home ${ring.home(name)}`);
      assert.equal(replies[0]!.headers.get('x-lamina-cold-start'), '1');
      for (const r of replies.slice(1)) {
        assert.equal(r.headers.get('x-lamina-cold-start'), '0', 'warm after the first call');
        assert.equal(r.headers.get('x-lamina-instance'), replies[0]!.headers.get('x-lamina-instance'));
      }
    }
    // Each worker is home to one of them: the cluster is used, not one node (as the next heartbeats tell).
    const warmOn = (view: any, w: string) => view.workers.find((x: { id: string }) => x.id === w).warm as string[];
    let view = await c.workersView();
    for (let i = 0; i < 20 && !IDS.every((w, k) => warmOn(view, w).includes(names[k]!)); i++) (await sleep(100), (view = await c.workersView()));
    for (const [i, w] of IDS.entries()) assert.ok(warmOn(view, w).includes(names[i]!), `${names[i]} warm on ${w}`);
  });

  test('a burst spills over to other workers, in ring order, within the bound', async () => {
    const name = 'burst';
    await deployFn(c.gateway.url, name, SLEEPER);
    const N = 15;
    const replies = await Promise.all(Array.from({ length: N }, () => run(c.gateway.url, name, { ms: 700 })));
    for (const r of replies) assert.equal(r.status, 200, r.text);
    const count = new Map<string, number>();
    for (const r of replies) count.set(workerOf(r)!, (count.get(workerOf(r)!) ?? 0) + 1);
    const pref = ring.preference(name);
    assert.ok(count.size >= 2, `spread over ${JSON.stringify([...count])}`);
    // Spills follow the ring: the workers used are a prefix of the preference list.
    assert.deepEqual([...count.keys()].sort(), pref.slice(0, count.size).slice().sort());
    const { epsilon } = (await c.workersView()).routing;
    const cap = boundedCapacity(N, 3, epsilon);
    for (const [w, n] of count) assert.ok(n <= cap, `${w} took ${n} > ${cap}`);
    assert.equal(Math.max(...count.values()), count.get(pref[0]!), 'the home took the most');
    // The admin API lists its instances on every worker it ran on.
    const d = await adminCall(c.gateway.url, 'GET', `/functions/${name}`);
    const on = new Set(d.body.instances.map((i: { id: string }) => i.id.split('/')[0]));
    assert.deepEqual([...on].sort(), [...count.keys()].sort());
    // Once the burst is over, calls go home again, warm.
    const after = await run(c.gateway.url, name, {});
    assert.equal(workerOf(after), pref[0]);
    assert.equal(after.headers.get('x-lamina-cold-start'), '0');
  });

  test('records and logs of every worker reach the shared store: admin API, lamina logs and lamina bill', async () => {
    const calls = 24;
    const replies = await Promise.all(Array.from({ length: calls }, (_, i) => run(c.gateway.url, 'burst', { ms: 300, tag: `t${i}` })));
    const served = new Set(replies.map(workerOf));
    assert.ok(served.size >= 2);
    // Visible through the gateway as soon as the answers are (the read barrier flushes the workers).
    for (const r of replies.slice(0, 5)) {
      const rec = await adminCall(c.gateway.url, 'GET', `/invocations/${r.headers.get('x-lamina-request-id')}`);
      assert.equal(rec.status, 200, rec.text);
      assert.equal(rec.body.worker, workerOf(r));
      assert.match(rec.body.logs, /ran t\d+/);
    }
    const list = await adminCall(c.gateway.url, 'GET', '/invocations?function=burst&limit=1000');
    const total = 15 + 1 + calls;
    assert.equal(list.body.invocations.length, total);
    assert.deepEqual(new Set(list.body.invocations.map((x: { worker: string }) => x.worker)), new Set([...served, ...list.body.invocations.map((x: { worker: string }) => x.worker)]));
    assert.ok(new Set(list.body.invocations.map((x: { worker: string }) => x.worker)).size >= 2);

    const bill = lamina(['bill'], env);
    assert.equal(bill.code, 0, bill.err);
    assert.match(bill.out, new RegExp(`^burst\\s+${total}\\s+0\\s`, 'm'));
    const logs = lamina(['logs', 'burst', '-n', '100'], env);
    assert.equal(logs.code, 0, logs.err);
    for (let i = 0; i < calls; i++) assert.match(logs.out, new RegExp(`ran t${i}\\b`));
  });

  test('lamina workers shows each worker with its load and warm functions', () => {
    const r = lamina(['workers'], env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^ID\s+STATE\s+URL\s+IN FLIGHT\s+INSTANCES\s+WARM\s+WARM FUNCTIONS/m);
    for (const w of IDS) assert.match(r.out, new RegExp(`^${w}\\s+up\\s+http://`, 'm'));
    assert.match(r.out, /routing: bounded \(epsilon 1\)/);
    const json = JSON.parse(lamina(['workers', '--json'], env).out);
    const home = json.workers.find((w: { id: string }) => w.id === ring.home('burst'));
    assert.ok(home.warm.includes('burst'));
    assert.ok(home.instances >= 1);
    assert.equal(typeof home.inflight.gateway, 'number');
    for (const cmd of [['gateway'], ['worker'], ['workers'], ['workers', 'drain'], ['workers', 'resume']]) {
      const h = lamina([...cmd, '--help'], {});
      assert.equal(h.code, 0);
      assert.match(h.out, /Usage: lamina/);
    }
    const bad = lamina(['worker', '--gateway', 'http://127.0.0.1:1', '--database', 'mysql://x'], { LAMINA_CLUSTER_SECRET: 'x' });
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /--database must be a PostgreSQL URL/);
  });

  test('a redeploy through the gateway reaches every worker', async () => {
    await deployFn(c.gateway.url, 'burst', 'export async function handler(e) { await new Promise((r) => setTimeout(r, e.ms ?? 0)); return { v: 2 }; }');
    const replies = await Promise.all(Array.from({ length: 12 }, () => run(c.gateway.url, 'burst', { ms: 300 })));
    assert.ok(new Set(replies.map(workerOf)).size >= 2);
    for (const r of replies) {
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { v: 2 });
      assert.equal(r.headers.get('x-lamina-version'), '2');
    }
  });

  test('a function with dependencies runs on every worker: its installed node_modules travel by hash too', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'lamina-deps-'));
    try {
      const pkg = path.join(work, 'pkg');
      mkdirSync(pkg);
      writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'lamina-test-dep', version: '1.0.0', main: 'index.js' }));
      writeFileSync(path.join(pkg, 'index.js'), 'module.exports = { answer: () => 42 };');
      const fn = path.join(work, 'withdeps');
      mkdirSync(path.join(fn, 'vendor'), { recursive: true });
      const packed = spawnSync('npm', ['pack', '--pack-destination', path.join(fn, 'vendor')], { cwd: pkg, encoding: 'utf8' });
      assert.equal(packed.status, 0, packed.stderr);
      writeFileSync(path.join(fn, 'package.json'), JSON.stringify({ name: 'withdeps', type: 'module', dependencies: { 'lamina-test-dep': 'file:./vendor/lamina-test-dep-1.0.0.tgz' } }));
      writeFileSync(
        path.join(fn, 'index.mjs'),
        'import dep from "lamina-test-dep";\nexport async function handler(e) { await new Promise((r) => setTimeout(r, e.ms ?? 0)); return { answer: dep.answer() }; }\n',
      );
      await deploy({ url: c.gateway.url, token: TOKEN } as never, fn, 'withdeps');
      const replies = await Promise.all(Array.from({ length: 12 }, () => run(c.gateway.url, 'withdeps', { ms: 500 })));
      for (const r of replies) {
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.body, { answer: 42 });
      }
      assert.ok(new Set(replies.map(workerOf)).size >= 2, 'ran on more than one worker');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test('drain: a drained worker gets no new calls, finishes its own, and comes back on resume', async () => {
    const name = nameHomedOn('w2', 'drain-');
    await deployFn(c.gateway.url, name, SLEEPER);
    assert.equal(workerOf(await run(c.gateway.url, name, {})), 'w2');
    const slow = run(c.gateway.url, name, { ms: 1500 });
    await sleep(300);
    const d = lamina(['workers', 'drain', 'w2', '--wait'], env);
    assert.equal(d.code, 0, d.err);
    assert.match(d.out, /w2 drained/);
    assert.equal((await slow).status, 200, 'the call in flight finished');
    const view = await c.workersView();
    assert.equal(view.workers.find((w: { id: string }) => w.id === 'w2').state, 'draining');
    const moved = await run(c.gateway.url, name, {});
    assert.equal(moved.status, 200);
    assert.equal(workerOf(moved), ring.preference(name)[1], 'the next worker on the ring takes over');
    assert.equal(lamina(['workers', 'resume', 'w2'], env).code, 0);
    const back = await run(c.gateway.url, name, {});
    assert.equal(workerOf(back), 'w2');
    assert.equal(back.headers.get('x-lamina-cold-start'), '0', 'still warm at home');
    assert.match(lamina(['workers', 'drain', 'nobody'], env).err, /no registered worker "nobody"/);
  });

  test('a second gateway on the same database serves the same functions, routed the same way', async () => {
    let g2: Proc | undefined;
    try {
      g2 = await spawnLamina('gateway', ['--port', '0', '--data-dir', path.join(c.workers.get('w1')!.dataDir, '..', 'gateway2')], c.env);
      const deadline = Date.now() + 10_000;
      while ((await call(`${g2.url}/healthz`)).body.workers.up !== 3 && Date.now() < deadline) await sleep(100);
      const name = nameHomedOn('w3', 'two-');
      // Deployed through the first gateway, called through the second.
      await deployFn(c.gateway.url, name, SLEEPER);
      let r = await run(g2.url, name, {});
      for (let i = 0; r.status === 404 && i < 50; i++) (await sleep(100), (r = await run(g2.url, name, {})));
      assert.equal(r.status, 200, r.text);
      assert.equal(workerOf(r), 'w3');
      assert.equal(workerOf(await run(c.gateway.url, name, {})), 'w3');
      // Its records are visible through the other gateway.
      const rec = await adminCall(g2.url, 'GET', `/invocations?function=${name}`);
      assert.equal(rec.body.invocations.length, 2);
    } finally {
      await g2?.stop();
    }
  });

  test('SIGKILL of a worker under load: calls it had not started go elsewhere, its own get 502, the rest keep being served, and it rejoins', async () => {
    const victim = 'w1';
    const names = [...IDS.map((w) => nameHomedOn(w, 'load-')), nameHomedOn(victim, 'load-x')];
    for (const name of names) await deployFn(c.gateway.url, name, SLEEPER);
    for (const name of names) await run(c.gateway.url, name, {}); // warm at home
    const sandboxes = c.workers.get(victim)!.childPids();

    const results: { status: number; worker: string | null; type?: string; at: number }[] = [];
    const t0 = Date.now();
    let killedAt = Infinity;
    const clients = Array.from({ length: 12 }, async (_, k) => {
      for (let i = 0; Date.now() - t0 < 4000; i++) {
        const r = await run(c.gateway.url, names[(k + i) % names.length]!, { ms: 150 });
        results.push({ status: r.status, worker: workerOf(r), type: r.body?.error?.type, at: Date.now() });
      }
    });
    await sleep(1500);
    killedAt = Date.now();
    c.workers.get(victim)!.proc.kill('SIGKILL');
    await Promise.all(clients);

    const crashed = results.filter((r) => r.status === 502);
    const other = results.filter((r) => r.status !== 200 && r.status !== 502);
    assert.deepEqual(other, [], 'no other errors: nothing the dead worker had not started was lost');
    for (const r of crashed) {
      assert.equal(r.type, 'WorkerCrashed');
      assert.equal(r.worker, victim);
      assert.ok(r.at >= killedAt);
    }
    assert.ok(crashed.length <= 12, `${crashed.length} calls lost with the worker`);
    const before = results.filter((r) => r.at < killedAt);
    const later = results.filter((r) => r.at > killedAt + 500);
    assert.ok(before.some((r) => r.worker === victim), 'the victim was serving before');
    // Serving goes on: at least a quarter of the pace before the kill (an absolute count depends on
    // the machine: the survivors start cold instances for the victim's functions).
    const paceBefore = before.length / ((killedAt - t0) / 1000);
    const lastAt = Math.max(...results.map((r) => r.at));
    const paceAfter = later.length / (Math.max(1, lastAt - killedAt - 500) / 1000);
    assert.ok(later.length > 0 && paceAfter >= paceBefore / 4, `${later.length} calls served after the kill (${paceAfter.toFixed(1)}/s vs ${paceBefore.toFixed(1)}/s before)`);
    // Calls the victim had started answer 502 when the gateway sees it die (bounded above, whenever that
    // is on a slow machine); every other call after the kill is served, and never by the victim.
    const servedLater = later.filter((r) => r.status !== 502);
    assert.ok(servedLater.every((r) => r.status === 200 && r.worker !== victim), JSON.stringify(servedLater.filter((r) => r.status !== 200 || r.worker === victim).slice(0, 5)));
    const view = await c.workersView();
    assert.match(view.workers.find((w: { id: string }) => w.id === victim).state, /down|unreachable/);
    // Its sandboxes died with it (parent-death signal).
    await sleep(300);
    assert.deepEqual(sandboxes.filter(isAlive), []);

    // Restarted under the same id (on a new port), it rejoins and gets its functions back.
    await c.workers.get(victim)!.exited;
    await c.startWorker(victim);
    await c.waitForUp(IDS);
    const home = names[0]!;
    const first = await run(c.gateway.url, home, {});
    assert.equal(workerOf(first), victim);
    assert.equal(first.headers.get('x-lamina-cold-start'), '1', 'a new process starts cold');
    assert.equal(workerOf(await run(c.gateway.url, home, {})), victim);
  });

  test('a hung worker: its calls get 502 once its heartbeats stop, calls it had not started run elsewhere (once), and it comes back', async () => {
    const w = 'w2';
    const name = nameHomedOn(w, 'hang-');
    await deployFn(c.gateway.url, name, SLEEPER);
    assert.equal(workerOf(await run(c.gateway.url, name, {})), w);
    const view0 = await c.workersView();
    const url = view0.workers.find((x: { id: string }) => x.id === w).url;
    const served = async () => (await call(`${url}/internal/v1/stats`, { headers: { authorization: `Bearer ${SECRET}` } })).body.served as number;
    const servedBefore = await served();

    const long = run(c.gateway.url, name, { ms: 2000 });
    await sleep(300);
    const proc = c.workers.get(w)!.proc;
    proc.kill('SIGSTOP');
    try {
      const t = performance.now();
      const moved = await run(c.gateway.url, name, {}); // sent to the hung home, never accepted: retried
      assert.equal(moved.status, 200, moved.text);
      assert.equal(workerOf(moved), ring.preference(name)[1]);
      assert.ok(performance.now() - t < 3000);
      const lost = await long;
      assert.equal(lost.status, 502);
      assert.equal(lost.body.error.type, 'WorkerCrashed');
      assert.match(lost.body.error.message, /stopped sending heartbeats/);
      assert.equal(workerOf(lost), w);
    } finally {
      proc.kill('SIGCONT');
    }
    await c.waitForUp(IDS);
    await sleep(600); // just after a stall the worker refuses calls (they go elsewhere): they may have waited too long
    assert.equal(workerOf(await run(c.gateway.url, name, {})), w);
    // It ran the long call and the last one, but not the call the gateway gave up on while it hung.
    assert.equal(await served(), servedBefore + 2);
  });

  test('a worker stopped gracefully under load loses no call', async () => {
    const name = nameHomedOn('w3', 'grace-');
    await deployFn(c.gateway.url, name, SLEEPER);
    const results: Reply[] = [];
    const t0 = Date.now();
    const clients = Array.from({ length: 6 }, async () => {
      while (Date.now() - t0 < 2500) results.push(await run(c.gateway.url, name, { ms: 200 }));
    });
    await sleep(800);
    const stopped = c.workers.get('w3')!.stop('SIGTERM');
    await Promise.all(clients);
    assert.equal(await stopped, 0);
    assert.deepEqual(results.filter((r) => r.status !== 200).map((r) => r.text), []);
    assert.ok(results.some((r) => workerOf(r) === 'w3') && results.some((r) => workerOf(r) !== 'w3'));
    const view = await c.workersView();
    assert.equal(view.workers.find((w: { id: string }) => w.id === 'w3').state, 'left');
  });

  test('with no worker up, calls get 503 at once, with the reason', async () => {
    await Promise.all([...c.workers.values()].map((w) => w.stop('SIGTERM')));
    const t = performance.now();
    const r = await run(c.gateway.url, 'greet', {});
    const ms = performance.now() - t;
    assert.equal(r.status, 503, r.text);
    assert.equal(r.body.error.type, 'ServiceUnavailable');
    assert.match(r.body.error.message, /no worker is up: w1 left, w2 left, w3 left/);
    assert.equal(r.headers.get('x-lamina-worker'), null);
    assert.ok(ms < 500, `answered in ${ms.toFixed(0)} ms`);
    assert.equal((await call(`${c.gateway.url}/healthz`)).body.workers.up, 0);
  });
});
