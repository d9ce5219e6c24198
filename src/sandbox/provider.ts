// The sandbox layer's front door for the worker: which tiers this machine can
// run, which one `auto` means, and a pre-started pool per tier.
import { PYTHON } from './container/bwrap-args.js';
import type { Manifest } from '../registry/types.js';
import { startReaper, sweepLeftovers } from './leftovers.js';
import { SandboxPool } from './pool.js';
import { RunDir } from './run-dir.js';
import { TIER_FACTORIES, AUTO_ORDER } from './tiers.js';
import type { LoadSpec, Sandbox, SandboxBackend, SandboxShape, SandboxTier } from './types.js';

export interface ProviderOptions {
  /** `auto` picks the strongest available tier; a named tier must be available. */
  tier: 'auto' | SandboxTier;
  poolSize: number;
  log: (msg: string) => void;
  /** Preloaded sandboxes per function version with installed dependencies (default LAMINA_PRELOAD, else 1; 0 turns preloading off). */
  preloadSize?: number;
  /** Load an isolate of each newly deployed isolate-tier version at once (default LAMINA_ISOLATE_PRELOAD, else on; off with the pool off). */
  isolatePreload?: boolean;
}

export interface TierStatus {
  tier: SandboxTier;
  ok: boolean;
  reason: string;
}

export class SandboxProvider {
  private pools = new Map<SandboxTier, SandboxPool>();
  private constructor(
    readonly defaultTier: SandboxTier,
    readonly tiers: TierStatus[],
    private readonly runDir: RunDir,
    private readonly log: (msg: string) => void,
    private readonly isolatePreload: boolean,
  ) {}

  static async create(opts: ProviderOptions): Promise<SandboxProvider> {
    // What servers killed outright left on this host (frozen sandboxes, cgroups, run dirs) goes first.
    const swept = await sweepLeftovers();
    if (swept.cgroups + swept.processes + swept.runDirs > 0)
      opts.log(`swept what dead Lamina processes left: ${swept.processes} processes, ${swept.cgroups} cgroups, ${swept.runDirs} run dirs`);
    const runDir = new RunDir();
    const tiers: TierStatus[] = [];
    const backends = new Map<SandboxTier, SandboxBackend>();
    for (const [tier, factory] of Object.entries(TIER_FACTORIES) as [SandboxTier, NonNullable<(typeof TIER_FACTORIES)[SandboxTier]>][]) {
      try {
        const backend = await factory(runDir, opts.log);
        const probe = await backend.probe();
        tiers.push({ tier, ok: probe.ok, reason: probe.reason });
        if (probe.ok) backends.set(tier, backend);
        else await backend.close();
      } catch (err) {
        tiers.push({ tier, ok: false, reason: (err as Error).message });
      }
    }
    let chosen: SandboxTier | undefined;
    if (opts.tier === 'auto') chosen = AUTO_ORDER.find((t) => backends.has(t));
    else if (backends.has(opts.tier)) chosen = opts.tier;
    if (!chosen) {
      for (const b of backends.values()) await b.close();
      runDir.remove();
      const why = tiers.find((t) => t.tier === opts.tier)?.reason ?? 'no tier is available';
      throw new Error(`sandbox tier "${opts.tier}" is not available on this machine: ${why}`);
    }
    const isolatePreload = opts.poolSize > 0 && (opts.isolatePreload ?? isolatePreloadFromEnv());
    const provider = new SandboxProvider(chosen, tiers, runDir, opts.log, isolatePreload);
    provider.retireReaper = startReaper(runDir.root);
    const warm: SandboxShape[] = [{ runtime: 'node', memoryMb: 128, network: false }];
    for (const [tier, backend] of backends) {
      const preloadSize = opts.preloadSize ?? preloadFromEnv();
      const pool = new SandboxPool(backend, { size: opts.poolSize, warmShapes: tier === chosen ? warm : [], log: opts.log, preloadSize: opts.poolSize > 0 ? preloadSize : 0 });
      provider.pools.set(tier, pool);
      pool.start();
    }
    return provider;
  }

  /** The tier a function runs on. */
  tierFor(m: Pick<Manifest, 'sandbox'>): SandboxTier {
    return m.sandbox === 'auto' ? this.defaultTier : m.sandbox;
  }

  /** Why this machine cannot run a function, or undefined when it can. */
  check(m: Pick<Manifest, 'sandbox' | 'runtime'>): string | undefined {
    const tier = this.tierFor(m);
    const pool = this.pools.get(tier);
    if (!pool) return `sandbox tier "${tier}" is not available on this worker: ${this.tiers.find((t) => t.tier === tier)?.reason ?? 'unknown tier'}`;
    if (!pool.backend.supports(m.runtime)) {
      if (m.runtime !== 'python') return `sandbox tier "${tier}" cannot run the ${m.runtime} runtime`;
      // Only the container tier confines a Python interpreter: say whether this worker has it and why not.
      const container = this.tiers.find((t) => t.tier === 'container');
      const why =
        tier === 'container'
          ? `${PYTHON} is missing or unusable`
          : container && !container.ok
            ? `the container tier is unavailable here: ${container.reason}`
            : `set "sandbox": "container"; this worker runs "auto" functions on "${this.defaultTier}"`;
      return `sandbox tier "${tier}" cannot run the python runtime: python functions run on the container tier only (${why})`;
    }
    return undefined;
  }

  /** A sandbox for a function; with its LoadSpec, one that already preloaded its dependencies when one waits. */
  async acquire(m: Pick<Manifest, 'sandbox' | 'runtime' | 'memoryMb' | 'network'>, spec?: LoadSpec): Promise<Sandbox> {
    const problem = this.check(m);
    if (problem) throw new Error(problem);
    const pool = this.pools.get(this.tierFor(m))!;
    // Isolates need no preloading: their dependencies are bundled into the isolate build.
    const { sandbox } = await pool.acquire({ runtime: m.runtime, memoryMb: m.memoryMb, network: m.network }, pool.backend.tier === 'isolate' ? undefined : spec);
    return sandbox;
  }

  /** A version with installed dependencies was deployed: pre-start sandboxes that import them (the tier's pool decides whether it can). */
  preload(m: Pick<Manifest, 'sandbox' | 'runtime' | 'memoryMb' | 'network'>, spec: LoadSpec): void {
    if (this.check(m) || this.tierFor(m) === 'isolate') return;
    this.pools.get(this.tierFor(m))!.preload({ runtime: m.runtime, memoryMb: m.memoryMb, network: m.network }, spec);
  }

  /**
   * Whether a newly deployed version gets an instance loaded at once (the worker
   * starts it ahead of any call): isolate-tier functions, ~1.5 MB each, unless
   * LAMINA_ISOLATE_PRELOAD=0. The other tiers' instances cost a process each.
   */
  loadsAhead(m: Pick<Manifest, 'sandbox' | 'runtime'>): boolean {
    return this.isolatePreload && this.check(m) === undefined && this.tierFor(m) === 'isolate';
  }

  /** A function was deleted: drop its preloaded sandboxes. */
  forget(functionName: string): void {
    for (const p of this.pools.values()) p.forget(functionName);
  }

  idleSandboxes(): number {
    let n = 0;
    for (const p of this.pools.values()) n += p.idleCount();
    return n;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    this.runDir.remove();
    this.retireReaper();
  }

  /** Ends the reaper that would clear up after a kill -9 (leftovers.ts). */
  private retireReaper: () => void = () => undefined;
}

function preloadFromEnv(): number {
  const raw = process.env.LAMINA_PRELOAD;
  if (raw === undefined || raw === '') return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`LAMINA_PRELOAD must be a non-negative integer (got "${raw}")`);
  return n;
}

function isolatePreloadFromEnv(): boolean {
  const raw = process.env.LAMINA_ISOLATE_PRELOAD;
  if (raw === undefined || raw === '' || raw === '1') return true;
  if (raw === '0') return false;
  throw new Error(`LAMINA_ISOLATE_PRELOAD must be 0 or 1 (got "${raw}")`);
}
