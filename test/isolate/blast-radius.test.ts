// Functions sharing an isolate host, attacked by one of them: a function whose
// single oversized allocation aborts V8 takes down the host it shares. Its call
// fails with MemoryLimitExceeded, the idle neighbours are told (SandboxCrashed)
// and start again in another host, and the attacker is quarantined in a host of
// its own, so a second attack only kills itself.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { isolateFunctionsPerHost } from '../../src/sandbox/tiers.js';
import { build, call, Fixture, SNIPPET_RUNNER } from './helpers.js';

const fx = new Fixture({ functionsPerHost: 10 });
after(() => fx.close());

const ABORT = 'new Array(2 ** 27).fill(0); return 1;';
const hostOf = (fn: string) => fx.backend.hostInfo().find((h) => h.functions.includes(`${fn}:nonet`));

test('a function that aborts its shared host: its call fails, neighbours restart elsewhere, it is quarantined', async () => {
  const bombFn = await build(SNIPPET_RUNNER, { memoryMb: 64 }, 'bomber');
  const n1Fn = await build(SNIPPET_RUNNER, {}, 'neighbour1');
  const n2Fn = await build(SNIPPET_RUNNER, {}, 'neighbour2');
  const n1 = await fx.start(n1Fn);
  const n2 = await fx.start(n2Fn);
  const bomb = await fx.start(bombFn);
  assert.equal((await call(n1, { code: 'return 1;' })).value, 1);
  const shared = hostOf('bomber');
  assert.ok(shared?.pid, 'the bomber has a host');
  assert.deepEqual(new Set(shared.functions), new Set(['neighbour1:nonet', 'neighbour2:nonet', 'bomber:nonet']), 'three functions share one host');
  const deaths: string[] = [];
  n1.onDeath((r) => deaths.push(r));
  n2.onDeath((r) => deaths.push(r));

  const o = await call(bomb, { code: ABORT }, 20_000);
  assert.equal(o.error?.type, 'MemoryLimitExceeded', o.error?.message);
  assert.match(o.error!.message, /only function running/);
  assert.equal(n1.alive, false);
  assert.equal(n2.alive, false);
  assert.equal(deaths.length, 2);
  for (const d of deaths) assert.match(d, /^SandboxCrashed: the isolate host this function shared with 2 other function\(s\) ended/);
  assert.equal(fx.backend.isQuarantined('bomber', false), true);
  assert.equal(fx.backend.isQuarantined('neighbour1', false), false);
  assert.ok(fx.logs.some((l) => /bomber:nonet was running when its shared host died/.test(l)), fx.logs.join('\n'));

  // The neighbours start again in a live host and answer; the bomber gets a host of its own.
  const n1b = await fx.start(n1Fn);
  const n2b = await fx.start(n2Fn);
  assert.equal((await call(n1b, { code: 'return "back";' })).value, 'back');
  const bomb2 = await fx.start(bombFn);
  const own = hostOf('bomber')!;
  assert.deepEqual(own.functions, ['bomber:nonet']);
  assert.equal(own.dedicated, true);
  assert.notEqual(own.pid, hostOf('neighbour1')!.pid);
  assert.equal(hostOf('neighbour1')!.pid, hostOf('neighbour2')!.pid, 'the neighbours share a host again');

  // A second attack ends only the bomber's own host.
  const again = await call(bomb2, { code: ABORT }, 20_000);
  assert.equal(again.error?.type, 'MemoryLimitExceeded', again.error?.message);
  assert.equal(n1b.alive, true);
  assert.equal(n2b.alive, true);
  assert.equal((await call(n2b, { code: 'return 2;' })).value, 2);
  assert.equal(bomb2.alive, false);
});

test('two functions running when a shared host dies: neither can be blamed, both calls are SandboxCrashed and both are quarantined', async () => {
  const bombFn = await build(SNIPPET_RUNNER, { memoryMb: 64 }, 'bomber2');
  const slowFn = await build(SNIPPET_RUNNER, {}, 'slowpoke');
  const slow = await fx.start(slowFn);
  const bomb = await fx.start(bombFn);
  assert.equal(hostOf('bomber2')!.pid, hostOf('slowpoke')!.pid);
  // The slow call is in the host (waiting on a timer far longer than the bomb can take, even on a busy machine) when the bomb goes off.
  const waiting = call(slow, { code: 'await new Promise((r) => setTimeout(r, 600_000)); return 1;' }, 900_000);
  await new Promise((r) => setTimeout(r, 100));
  const [o, w] = await Promise.all([call(bomb, { code: ABORT }, 20_000), waiting]);
  assert.equal(o.error?.type, 'SandboxCrashed', o.error?.message);
  assert.equal(w.error?.type, 'SandboxCrashed', w.error?.message);
  assert.match(w.error!.message, /ended while 2 of them were running/);
  assert.equal(fx.backend.isQuarantined('bomber2', false), true);
  assert.equal(fx.backend.isQuarantined('slowpoke', false), true);
});

test('LAMINA_ISOLATE_FUNCTIONS_PER_HOST=1 keeps one host per function', async () => {
  const one = new Fixture({ functionsPerHost: 1 });
  try {
    const a = await one.start(await build(SNIPPET_RUNNER, {}, 'solo-a'));
    const b = await one.start(await build(SNIPPET_RUNNER, {}, 'solo-b'));
    assert.equal((await call(a, { code: 'return 1;' })).value, 1);
    assert.equal((await call(b, { code: 'return 2;' })).value, 2);
    const hosts = one.backend.hostInfo().filter((h) => h.functions.length > 0);
    assert.equal(hosts.length, 2);
    for (const h of hosts) assert.equal(h.functions.length, 1);
  } finally {
    await one.close();
  }
});

test('LAMINA_ISOLATE_FUNCTIONS_PER_HOST: a whole number of at least 1, 50 when unset, a clear error otherwise', () => {
  assert.equal(isolateFunctionsPerHost({}), 50);
  assert.equal(isolateFunctionsPerHost({ LAMINA_ISOLATE_FUNCTIONS_PER_HOST: '1' }), 1);
  assert.equal(isolateFunctionsPerHost({ LAMINA_ISOLATE_FUNCTIONS_PER_HOST: '200' }), 200);
  for (const bad of ['0', '-3', '2.5', 'many']) {
    assert.throws(() => isolateFunctionsPerHost({ LAMINA_ISOLATE_FUNCTIONS_PER_HOST: bad }), new RegExp(`LAMINA_ISOLATE_FUNCTIONS_PER_HOST must be a whole number of at least 1 \\(got "${bad}"\\)`));
  }
});
