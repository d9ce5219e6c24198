// The scale-out gate (src/worker/scale-gate.ts): slow start, the cores' limit for
// CPU-bound functions, and scale-out as before for everything else. Driven with a
// fake clock and fake scheduler counters, one tick at a time.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { readSchedStat, readSchedStatOfProcs, type SchedSample } from '../../src/sandbox/sched-stat.js';
import { ScaleGate, type GateSubject } from '../../src/worker/scale-gate.js';

/** A function with `n` instances; `run(ms, runnable)` moves the clock, each instance runnable that long (split between CPU and run queue). */
function fakeFunction(n: number, opts: { readable?: boolean } = {}) {
  let now = 0;
  const sched = new Map<string, SchedSample>(Array.from({ length: n }, (_, i) => [`i${i}`, { cpuMs: 0, waitMs: 0 }]));
  let rescaled = 0;
  const s: GateSubject & { waitingNow: boolean; now(): number; run(ms: number, runnableMs: number): void; rescaled(): number } = {
    waitingNow: true,
    get waiting() {
      return this.waitingNow;
    },
    *schedReadings() {
      for (const [id, v] of sched) yield [id, opts.readable === false ? undefined : { ...v }];
    },
    rescale() {
      rescaled++;
    },
    now: () => now,
    run(ms, runnableMs) {
      now += ms;
      // Two cores, n runnable instances: each is on a CPU part of the time and queued the rest.
      for (const v of sched.values()) {
        v.cpuMs += runnableMs / 2;
        v.waitMs += runnableMs / 2;
      }
    },
    rescaled: () => rescaled,
  };
  return s;
}

const gates: ScaleGate[] = [];
afterEach(() => {
  for (const g of gates.splice(0)) g.stop();
});

function gateFor(f: { now(): number }, cores = 2): ScaleGate {
  // The period's timer is unref'd; the test ticks by hand (real ticks find the fake clock unmoved).
  const g = new ScaleGate({ cores, intervalMs: 50, now: f.now });
  gates.push(g);
  return g;
}

test('the first instance always starts; then starts in flight are held to max(4 per core, ready instances)', () => {
  const f = fakeFunction(0);
  const g = gateFor(f);
  assert.equal(g.mayStart(f, { ready: 0, starting: 0 }), true);
  assert.equal(g.mayStart(f, { ready: 0, starting: 7 }), true);
  assert.equal(g.mayStart(f, { ready: 0, starting: 8 }), false, 'a burst waits for the first starts');
  assert.equal(g.mayStart(f, { ready: 4, starting: 8 }), false);
  assert.equal(g.mayStart(f, { ready: 20, starting: 19 }), true, 'twenty ready instances may have twenty starts in flight');
  assert.equal(g.mayStart(f, { ready: 20, starting: 20 }), false);
});

test('once a sample shows the instances mostly asleep (calls waiting on I/O), starts are no longer paced', () => {
  const f = fakeFunction(3);
  const g = gateFor(f);
  assert.equal(g.mayStart(f, { ready: 3, starting: 8 }), false);
  f.run(50, 5);
  g.tick();
  assert.equal(g.mayStart(f, { ready: 3, starting: 60 }), true);
  f.run(50, 50); // the same instances now spin: paced again (and at the cores' limit)
  g.tick();
  assert.equal(g.mayStart(f, { ready: 3, starting: 8 }), false);
});

test('as many CPU-bound instances as cores: no instance more; it scales again once its calls wait on I/O', () => {
  const f = fakeFunction(2);
  const g = gateFor(f);
  assert.equal(g.mayStart(f, { ready: 2, starting: 0 }), true, 'nothing known yet');
  f.run(50, 49);
  g.tick();
  assert.equal(g.mayStart(f, { ready: 2, starting: 0 }), false, 'two runnable instances fill two cores');
  assert.ok(f.rescaled() >= 1, 'asked to rescale after each sample');
  f.run(50, 2); // the calls now wait on I/O
  g.tick();
  assert.equal(g.mayStart(f, { ready: 2, starting: 0 }), true);
});

test('fewer CPU-bound instances than cores: another one adds throughput', () => {
  const f = fakeFunction(1);
  const g = gateFor(f);
  g.mayStart(f, { ready: 1, starting: 0 });
  f.run(50, 50);
  g.tick();
  assert.equal(g.mayStart(f, { ready: 1, starting: 0 }), true);
});

test('instances that mostly sleep never hold a function back, however many there are', () => {
  const f = fakeFunction(50);
  const g = gateFor(f);
  g.mayStart(f, { ready: 50, starting: 0 });
  f.run(50, 10);
  g.tick();
  assert.equal(g.mayStart(f, { ready: 50, starting: 0 }), true);
});

test('a verdict holds until the next sample, however late it comes', () => {
  const f = fakeFunction(2);
  const g = gateFor(f);
  g.mayStart(f, { ready: 2, starting: 0 });
  f.run(50, 50);
  g.tick();
  assert.equal(g.mayStart(f, { ready: 2, starting: 0 }), false);
  f.run(400, 400); // a late tick (the server's thread was busy): still runnable all along
  assert.equal(g.mayStart(f, { ready: 2, starting: 0 }), false);
  g.tick();
  assert.equal(g.mayStart(f, { ready: 2, starting: 0 }), false);
});

test('a tier that cannot read its counters is never held at the cores limit', () => {
  const f = fakeFunction(4, { readable: false });
  const g = gateFor(f);
  g.mayStart(f, { ready: 4, starting: 0 });
  f.run(50, 50);
  g.tick();
  assert.equal(g.mayStart(f, { ready: 4, starting: 0 }), true);
});

test('a function with no calls waiting is dropped from the samples', () => {
  const f = fakeFunction(2);
  const g = gateFor(f);
  g.mayStart(f, { ready: 2, starting: 0 });
  f.waitingNow = false;
  f.run(50, 50);
  g.tick();
  assert.equal(f.rescaled(), 0);
});

test("a process's scheduler counters (/proc/PID/schedstat) grow with its work; a gone process throws", () => {
  const a = readSchedStat(process.pid);
  // 60 ms of this process's own CPU time (not wall time: the machine may be busy).
  const u0 = process.cpuUsage();
  while (process.cpuUsage(u0).user + process.cpuUsage(u0).system < 60_000);
  const b = readSchedStat(process.pid);
  // The main thread's share of the process's 60 ms (GC and loader threads take some).
  assert.ok(b.cpuMs - a.cpuMs > 10 && b.cpuMs - a.cpuMs <= 80, `${a.cpuMs} -> ${b.cpuMs} ms on a CPU after 60 ms of the process's work`);
  assert.ok(b.waitMs >= a.waitMs);
  assert.throws(() => readSchedStat(2 ** 22 + 7), /ENOENT/, 'SafeSandbox turns this into undefined');
});

test('a cgroup.procs list is summed, skipping processes that are gone', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const file = `${mkdtempSync(`${tmpdir()}/procs-`)}/cgroup.procs`;
  writeFileSync(file, `${process.pid}\n${2 ** 22 + 7}\n\n`);
  const one = readSchedStat(process.pid);
  const sum = readSchedStatOfProcs(file);
  assert.ok(sum.cpuMs >= one.cpuMs && sum.cpuMs < one.cpuMs + 1000);
});
