// The scale-out gate (src/worker/scale-gate.ts): slow start, the cores' limit for
// CPU-bound functions, and scale-out as before for everything else. Driven with a
// fake clock, fake node counters and fake instance CPU readings, one tick at a time.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { readNodeCpu, ScaleGate, type GateSubject, type NodeCpu } from '../../src/worker/scale-gate.js';

/** A fake node of `cores` cores: `advance(ms, busyCores)` moves the clock and the counters. */
function fakeNode(cores: number) {
  let now = 0;
  const cpu: NodeCpu = { busyMs: 0, totalMs: 0 };
  return {
    now: () => now,
    read: () => ({ ...cpu }),
    advance(ms: number, busyCores: number) {
      now += ms;
      cpu.totalMs += ms * cores;
      cpu.busyMs += ms * busyCores;
    },
  };
}

/** A function with `n` instances; `burn(ms)` adds CPU to each. */
function fakeSubject(n: number, opts: { readable?: boolean } = {}) {
  const cpu = new Map<string, number>(Array.from({ length: n }, (_, i) => [`i${i}`, 0]));
  let rescaled = 0;
  const s: GateSubject & { waitingNow: boolean; burn(ms: number): void; rescaled(): number } = {
    waitingNow: true,
    get waiting() {
      return this.waitingNow;
    },
    *cpuReadings() {
      for (const [id, ms] of cpu) yield [id, opts.readable === false ? undefined : ms];
    },
    rescale() {
      rescaled++;
    },
    burn(ms: number) {
      for (const [id, v] of cpu) cpu.set(id, v + ms);
    },
    rescaled: () => rescaled,
  };
  return s;
}

const gates: ScaleGate[] = [];
afterEach(() => {
  for (const g of gates.splice(0)) g.stop();
});

function gateOn(node: ReturnType<typeof fakeNode>, cores = 2, readNode: () => NodeCpu | undefined = node.read): ScaleGate {
  // The period's timer is unref'd and its ticks find the same fake clock; the test ticks by hand.
  const g = new ScaleGate({ cores, intervalMs: 100, readNode, now: node.now });
  gates.push(g);
  return g;
}

test('the first instance always starts; then starts in flight are held to max(cores, ready instances)', () => {
  const node = fakeNode(2);
  const g = gateOn(node);
  const s = fakeSubject(0);
  assert.equal(g.mayStart(s, { ready: 0, starting: 0 }), true);
  assert.equal(g.mayStart(s, { ready: 0, starting: 1 }), true);
  assert.equal(g.mayStart(s, { ready: 0, starting: 2 }), false, 'a burst waits for the first starts');
  assert.equal(g.mayStart(s, { ready: 2, starting: 2 }), false);
  assert.equal(g.mayStart(s, { ready: 8, starting: 7 }), true, 'eight ready instances may have eight starts in flight');
  assert.equal(g.mayStart(s, { ready: 8, starting: 8 }), false);
});

test('a function whose instances fill a busy node is held at its instances; it scales again once its calls stop burning CPU', () => {
  const node = fakeNode(2);
  const g = gateOn(node);
  const s = fakeSubject(3);
  // Held by slow start first: that begins the sampling.
  assert.equal(g.mayStart(s, { ready: 1, starting: 2 }), false);
  node.advance(100, 1.95);
  s.burn(60); // 3 instances x 60 ms = 180 of the 195 busy ms
  g.tick();
  assert.equal(g.mayStart(s, { ready: 3, starting: 0 }), false, 'at the cores limit: no instance more');
  assert.ok(s.rescaled() >= 1, 'asked to rescale after each sample');
  // The calls turn to waiting on I/O: the node goes quiet.
  node.advance(100, 0.2);
  s.burn(1);
  g.tick();
  assert.equal(g.mayStart(s, { ready: 3, starting: 0 }), true);
});

test('a busy node whose CPU goes mostly elsewhere does not hold the function back', () => {
  const node = fakeNode(2);
  const g = gateOn(node);
  const s = fakeSubject(2);
  assert.equal(g.mayStart(s, { ready: 0, starting: 2 }), false);
  node.advance(100, 2);
  s.burn(20); // 40 of 200 busy ms
  g.tick();
  assert.equal(g.mayStart(s, { ready: 2, starting: 0 }), true);
});

test('a function on a node with idle cores is not held back, however much CPU it uses', () => {
  const node = fakeNode(4);
  const g = gateOn(node, 4);
  const s = fakeSubject(2);
  assert.equal(g.mayStart(s, { ready: 0, starting: 4 }), false);
  node.advance(100, 2.1);
  s.burn(100); // two instances, one core each, two cores idle
  g.tick();
  assert.equal(g.mayStart(s, { ready: 2, starting: 0 }), true);
});

test('a verdict goes stale when no sample follows it', () => {
  const node = fakeNode(2);
  const g = gateOn(node);
  const s = fakeSubject(2);
  g.mayStart(s, { ready: 0, starting: 2 });
  node.advance(100, 2);
  s.burn(95);
  g.tick();
  assert.equal(g.mayStart(s, { ready: 2, starting: 0 }), false);
  node.advance(301, 2);
  assert.equal(g.mayStart(s, { ready: 2, starting: 0 }), true);
});

test('a tier that cannot read its CPU is never held at the cores limit', () => {
  const node = fakeNode(2);
  const g = gateOn(node);
  const s = fakeSubject(4, { readable: false });
  g.mayStart(s, { ready: 0, starting: 2 });
  node.advance(100, 2);
  g.tick();
  assert.equal(g.mayStart(s, { ready: 4, starting: 0 }), true);
});

test('without node counters, a function taking nearly all the cores is held', () => {
  const node = fakeNode(2);
  const g = gateOn(node, 2, () => undefined);
  const s = fakeSubject(2);
  g.mayStart(s, { ready: 0, starting: 2 });
  node.advance(100, 0);
  s.burn(95);
  g.tick();
  assert.equal(g.mayStart(s, { ready: 2, starting: 0 }), false);
  node.advance(100, 0);
  s.burn(50);
  g.tick();
  assert.equal(g.mayStart(s, { ready: 2, starting: 0 }), true);
});

test('a function with no calls waiting is dropped from the samples', () => {
  const node = fakeNode(2);
  const g = gateOn(node);
  const s = fakeSubject(2);
  g.mayStart(s, { ready: 0, starting: 2 });
  s.waitingNow = false;
  node.advance(100, 2);
  g.tick();
  assert.equal(s.rescaled(), 0);
});

test('/proc/stat is read on this machine: busy within total, both growing', () => {
  const a = readNodeCpu();
  assert.ok(a, '/proc/stat readable');
  assert.ok(a.busyMs >= 0 && a.busyMs <= a.totalMs);
  let x = 0;
  for (let i = 0; i < 5e6; i++) x += i;
  assert.ok(x > 0);
  const b = readNodeCpu()!;
  assert.ok(b.totalMs >= a.totalMs && b.busyMs >= a.busyMs);
});

test("a process's CPU time from /proc/PID/stat (the process tier's reading) grows with work", async () => {
  const { processCpuMs } = await import('../../src/sandbox/process/backend.js');
  const a = processCpuMs(process.pid);
  // 60 ms of this process's own CPU time (not wall time: the machine may be busy).
  const u0 = process.cpuUsage();
  while (process.cpuUsage(u0).user + process.cpuUsage(u0).system < 60_000);
  const b = processCpuMs(process.pid);
  assert.ok(b - a >= 40, `${a} -> ${b} ms after 60 ms of CPU (ticks of 10 ms)`);
  assert.throws(() => processCpuMs(2 ** 22 + 7), /ENOENT/, 'a process that is gone throws (SafeSandbox turns that into undefined)');
});
