// The ring and the routing policies, without processes: stickiness, minimal
// movement when workers come and go, and the bounded-loads guarantee.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HashRing, Router, boundedCapacity, chooseBounded } from '../../src/cluster/ring.js';

/** A small deterministic PRNG (mulberry32), so failures replay. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Zipf(s) sampler over ranks 0..n-1. */
function zipf(n: number, s: number, rnd: () => number): () => number {
  const w = Array.from({ length: n }, (_, i) => 1 / (i + 1) ** s);
  const total = w.reduce((a, b) => a + b, 0);
  const cdf: number[] = [];
  let acc = 0;
  for (const x of w) cdf.push((acc += x / total));
  return () => {
    const u = rnd();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `fn-${i}`);

describe('hash ring', () => {
  test('every worker appears once in a preference list, home first, the same on every gateway', () => {
    const a = new HashRing(['w1', 'w2', 'w3']);
    const b = new HashRing(['w3', 'w1', 'w2', 'w1']);
    for (const key of names(500)) {
      const p = a.preference(key);
      assert.equal(p.length, 3);
      assert.equal(new Set(p).size, 3);
      assert.deepEqual(b.preference(key), p, 'insertion order and duplicates do not matter');
      assert.equal(a.home(key), p[0]);
    }
    assert.deepEqual(new HashRing([]).preference('x'), []);
  });

  test('homes are spread evenly enough with virtual nodes', () => {
    const ring = new HashRing(['w1', 'w2', 'w3']);
    const count = new Map<string, number>();
    for (const key of names(30_000)) count.set(ring.home(key)!, (count.get(ring.home(key)!) ?? 0) + 1);
    for (const [w, c] of count) assert.ok(c > 30_000 * 0.27 && c < 30_000 * 0.4, `${w} is home of ${c} of 30000`);
  });

  test('a worker leaving moves only its own functions, to the next worker of their lists', () => {
    const before = new HashRing(['w1', 'w2', 'w3', 'w4']);
    const after = new HashRing(['w1', 'w3', 'w4']);
    let moved = 0;
    for (const key of names(5000)) {
      const h = before.home(key)!;
      if (h === 'w2') {
        moved++;
        assert.equal(after.home(key), before.preference(key)[1], 'its second choice takes over');
      } else assert.equal(after.home(key), h, `${key} stays on ${h}`);
      // The order of the remaining workers is unchanged.
      assert.deepEqual(after.preference(key), before.preference(key).filter((w) => w !== 'w2'));
    }
    assert.ok(moved > 5000 * 0.15 && moved < 5000 * 0.35, `moved ${moved}`);
  });

  test('a worker joining takes functions only onto itself', () => {
    const before = new HashRing(['w1', 'w2', 'w3']);
    const after = new HashRing(['w1', 'w2', 'w3', 'w4']);
    for (const key of names(5000)) {
      const h = after.home(key)!;
      assert.ok(h === 'w4' || h === before.home(key), `${key}: ${before.home(key)} -> ${h}`);
    }
  });
});

describe('bounded loads (Mirrokni, Thorup, Zadimoghaddam)', () => {
  test('capacity is ceil((1+e) * m / n), never fooled by float error', () => {
    assert.equal(boundedCapacity(1, 3, 0.25), 1);
    assert.equal(boundedCapacity(12, 3, 0.25), 5);
    assert.equal(boundedCapacity(30, 3, 0.1), 11); // 1.1 * 30 / 3 = 11.000000000000002 in floats
    assert.equal(boundedCapacity(7, 2, 1), 7);
  });

  test('an idle cluster sends every call home (sticky); a full home spills to the next in ring order', () => {
    const r = new Router('bounded', 0.25);
    r.setNodes(['w1', 'w2', 'w3']);
    const load = new Map<string, number>();
    const l = (id: string) => load.get(id) ?? 0;
    for (const key of names(200)) assert.equal(r.choose(key, l), r.home(key));
    const pref = r.preference('hot');
    // Home at 1, others idle: m = 2 calls, cap = ceil(1.25 * 2 / 3) = 1: the second call spills to pref[1].
    load.set(pref[0]!, 1);
    assert.equal(r.choose('hot', l), pref[1]);
    load.set(pref[1]!, 1);
    // m = 3, cap = 2: home has room again.
    assert.equal(r.choose('hot', l), pref[0]);
    // Excluding workers (they failed the call) walks on along the list.
    assert.equal(r.choose('hot', () => 0, new Set([pref[0]!])), pref[1]);
    assert.equal(r.choose('hot', () => 0, new Set(pref)), undefined);
  });

  for (const [n, eps] of [
    [3, 0.25],
    [3, 0.1],
    [5, 0.5],
    [8, 1],
    [2, 0.05],
  ] as const) {
    test(`no worker ever goes above ceil((1+e) * average) (n=${n}, e=${eps})`, () => {
      const rnd = prng(n * 1000 + Math.round(eps * 100));
      const workers = Array.from({ length: n }, (_, i) => `w${i}`);
      const r = new Router('bounded', eps, 100, rnd);
      r.setNodes(workers);
      const load = new Map(workers.map((w) => [w, 0]));
      const pick = zipf(200, 1.0, rnd);
      const live: { w: string }[] = [];
      let total = 0;
      let insertsOnly = true;
      for (let step = 0; step < 40_000; step++) {
        if (step === 20_000) insertsOnly = false;
        // Phase 1 only adds balls; phase 2 mixes arrivals and departures around a steady load.
        if (!insertsOnly && live.length > 0 && rnd() < 0.5) {
          const [gone] = live.splice(Math.floor(rnd() * live.length), 1);
          load.set(gone!.w, load.get(gone!.w)! - 1);
          total--;
          continue;
        }
        if (insertsOnly && total >= 3000) continue;
        const w = r.choose(`fn-${pick()}`, (id) => load.get(id)!)!;
        load.set(w, load.get(w)! + 1);
        total++;
        live.push({ w });
        const cap = boundedCapacity(total, n, eps);
        // The guarantee at every assignment: the chosen worker is within the bound.
        assert.ok(load.get(w)! <= cap, `step ${step}: ${w} has ${load.get(w)} > cap ${cap} (m=${total})`);
        // With arrivals only, the bound holds for every worker at all times.
        if (insertsOnly) for (const [id, l] of load) assert.ok(l <= cap, `step ${step}: ${id} has ${l} > cap ${cap}`);
      }
    });
  }

  test('a hot function spreads over several workers while cold ones stay home', () => {
    const rnd = prng(7);
    const r = new Router('bounded', 0.25, 160, rnd);
    r.setNodes(['w1', 'w2', 'w3']);
    const load = new Map<string, number>([
      ['w1', 0],
      ['w2', 0],
      ['w3', 0],
    ]);
    const where = new Map<string, Set<string>>();
    let coldCalls = 0;
    let coldAtHome = 0;
    const inflight: { key: string; w: string }[] = [];
    for (let step = 0; step < 20_000; step++) {
      // Keep about 30 calls in flight: a third of them to one hot function.
      while (inflight.length >= 30) {
        const [gone] = inflight.splice(Math.floor(rnd() * inflight.length), 1);
        load.set(gone!.w, load.get(gone!.w)! - 1);
      }
      const key = rnd() < 1 / 3 ? 'hot' : `cold-${Math.floor(rnd() * 300)}`;
      const w = r.choose(key, (id) => load.get(id)!)!;
      load.set(w, load.get(w)! + 1);
      inflight.push({ key, w });
      if (!where.has(key)) where.set(key, new Set());
      where.get(key)!.add(w);
      if (key !== 'hot') {
        coldCalls++;
        if (w === r.home(key)) coldAtHome++;
      }
    }
    assert.ok(where.get('hot')!.size >= 2, 'the hot function uses more than its home');
    // The hot home is often full, and a call that finds it full spills whatever its function: so about
    // a third of the cold functions (those sharing the hot home) spill part of the time, to one fixed next worker.
    assert.ok(coldAtHome / coldCalls > 0.8, `${coldAtHome} of ${coldCalls} calls of cold functions ran at home`);
    const spread = [...where].filter(([k]) => k !== 'hot').reduce((n, [, ws]) => n + ws.size, 0) / (where.size - 1);
    assert.ok(spread < 2, `a cold function ran on ${spread.toFixed(2)} workers on average`);
  });
});

describe('comparison policies', () => {
  test('random uses every worker; least-loaded picks the least loaded', () => {
    const rnd = prng(3);
    const random = new Router('random', 0.25, 160, rnd);
    random.setNodes(['w1', 'w2', 'w3']);
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) seen.add(random.choose('same', () => 0)!);
    assert.equal(seen.size, 3);
    const ll = new Router('least-loaded', 0.25, 160, rnd);
    ll.setNodes(['w1', 'w2', 'w3']);
    const load = new Map([
      ['w1', 4],
      ['w2', 1],
      ['w3', 2],
    ]);
    assert.equal(ll.choose('x', (id) => load.get(id)!), 'w2');
    assert.equal(ll.choose('x', (id) => load.get(id)!, new Set(['w2'])), 'w3');
    assert.equal(ll.choose('x', () => 0, new Set(['w1', 'w2', 'w3'])), undefined);
  });

  test('chooseBounded on an empty list is undefined', () => {
    assert.equal(chooseBounded([], () => 0, 0.25), undefined);
  });
});
