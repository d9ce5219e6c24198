// Routing a function's calls to workers.
//
// `bounded` is consistent hashing with bounded loads (Mirrokni, Thorup and
// Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA 2018): workers
// sit on a hash ring at `vnodes` points each; a function's home is the first
// worker clockwise from the hash of its name, and the workers after it (in ring
// order, each once) are where its calls spill. A call goes to the first worker
// in that order whose load is below the capacity
//
//     ceil((1 + epsilon) * m / n)
//
// where m is the total load counting this call and n the number of workers,
// so no worker ever takes a call that lifts it above that bound, a cold
// function always lands on its home (where it is warm), and a hot one spreads
// over as many workers as its load needs, always the same ones in the same
// order (where it is warm too). Removing a worker moves only its functions.
//
// `random` and `least-loaded` ignore the function, for comparison.
import { createHash } from 'node:crypto';

export const ROUTING_POLICIES = ['bounded', 'random', 'least-loaded'] as const;
export type RoutingPolicy = (typeof ROUTING_POLICIES)[number];

/**
 * Lamina's default epsilon. 1 (a worker may carry up to twice the average
 * load) rather than the 0.25 often quoted for caches: with Zipf-skewed
 * functions the home of the most popular one is above 1.25x the average most
 * of the time, and every call that finds it full, whatever its function,
 * spills and starts cold elsewhere (docs/benchmarks.md, routing).
 */
export const DEFAULT_EPSILON = 1;

export function isRoutingPolicy(s: string): s is RoutingPolicy {
  return (ROUTING_POLICIES as readonly string[]).includes(s);
}

/** 32-bit position on the ring (the first 4 bytes of MD5: well spread, and the same on every gateway). */
export function ringHash(s: string): number {
  return createHash('md5').update(s).digest().readUInt32BE(0);
}

/** The MTZ capacity: most load a worker may have after taking a call, with m the total load counting that call. */
export function boundedCapacity(m: number, n: number, epsilon: number): number {
  // The small slack keeps float error (1.1 * 30 / 3 = 11.000000000000002) from adding one.
  return Math.max(1, Math.ceil(((1 + epsilon) * m) / n - 1e-9));
}

export class HashRing {
  readonly nodes: readonly string[];
  private readonly points: Uint32Array;
  private readonly owners: number[];
  private readonly cache = new Map<string, readonly string[]>();

  constructor(nodes: Iterable<string>, readonly vnodes = 160) {
    this.nodes = [...new Set(nodes)].sort();
    const pts: { h: number; owner: number }[] = [];
    this.nodes.forEach((id, owner) => {
      for (let v = 0; v < vnodes; v++) pts.push({ h: ringHash(`${id}#${v}`), owner });
    });
    // Ties (vanishingly rare) are broken by node id, so every gateway builds the same ring.
    pts.sort((a, b) => a.h - b.h || a.owner - b.owner);
    this.points = Uint32Array.from(pts.map((p) => p.h));
    this.owners = pts.map((p) => p.owner);
  }

  /** Every node once, in ring order from the key's position: the home first, then where it spills. */
  preference(key: string): readonly string[] {
    const hit = this.cache.get(key);
    if (hit) return hit;
    const out: string[] = [];
    const n = this.points.length;
    if (n > 0) {
      const h = ringHash(key);
      // First point at or after h (binary search), wrapping around.
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.points[mid]! < h) lo = mid + 1;
        else hi = mid;
      }
      const seen = new Uint8Array(this.nodes.length);
      for (let i = 0; i < n && out.length < this.nodes.length; i++) {
        const owner = this.owners[(lo + i) % n]!;
        if (!seen[owner]) {
          seen[owner] = 1;
          out.push(this.nodes[owner]!);
        }
      }
    }
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(key, out);
    return out;
  }

  home(key: string): string | undefined {
    return this.preference(key)[0];
  }
}

/** Bounded-load choice along a preference list; `load` is each worker's current load. */
export function chooseBounded(pref: readonly string[], load: (id: string) => number, epsilon: number, exclude?: ReadonlySet<string>): string | undefined {
  const cands = exclude && exclude.size ? pref.filter((id) => !exclude.has(id)) : pref;
  if (cands.length === 0) return undefined;
  let total = 0;
  for (const id of cands) total += load(id);
  const cap = boundedCapacity(total + 1, cands.length, epsilon);
  for (const id of cands) if (load(id) < cap) return id;
  // Unreachable: if every worker had load >= cap, the total would exceed itself.
  return cands[0];
}

export class Router {
  private ring = new HashRing([]);

  constructor(
    readonly policy: RoutingPolicy,
    readonly epsilon = DEFAULT_EPSILON,
    readonly vnodes = 160,
    private readonly random: () => number = Math.random,
  ) {
    if (!(epsilon > 0)) throw new Error(`epsilon must be a positive number (got ${epsilon})`);
  }

  /** The workers calls may go to; the ring is rebuilt only when the set changes. */
  setNodes(ids: Iterable<string>): void {
    const next = [...new Set(ids)].sort();
    const cur = this.ring.nodes;
    if (next.length === cur.length && next.every((id, i) => id === cur[i])) return;
    this.ring = new HashRing(next, this.vnodes);
  }

  get nodes(): readonly string[] {
    return this.ring.nodes;
  }

  /** The function's home among the current nodes. */
  home(key: string): string | undefined {
    return this.ring.home(key);
  }

  preference(key: string): readonly string[] {
    return this.ring.preference(key);
  }

  /** Where a call of `key` goes, skipping `exclude` (workers that already failed it); undefined when none is left. */
  choose(key: string, load: (id: string) => number, exclude?: ReadonlySet<string>): string | undefined {
    if (this.policy === 'bounded') return chooseBounded(this.ring.preference(key), load, this.epsilon, exclude);
    const cands = exclude && exclude.size ? this.ring.nodes.filter((id) => !exclude.has(id)) : this.ring.nodes;
    if (cands.length === 0) return undefined;
    if (this.policy === 'random') return cands[Math.floor(this.random() * cands.length)];
    // least-loaded: ties broken at random, so equal workers share the calls.
    let best: string[] = [];
    let min = Infinity;
    for (const id of cands) {
      const l = load(id);
      if (l < min) (min = l), (best = [id]);
      else if (l === min) best.push(id);
    }
    return best[Math.floor(this.random() * best.length)];
  }
}
