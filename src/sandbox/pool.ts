// Pre-started generic sandboxes, so a cold start is a specialization (load code
// into a waiting runtime) rather than a spawn. Sandboxes are grouped by shape
// (tier-specific startup parameters such as the heap cap); shapes in use are
// kept topped up in the background.
// Beside the generic slots, "preloaded" slots (SOCK's import cache, adapted to
// runtimes that cannot fork): sandboxes that already imported one function
// version's installed dependencies, so its cold starts skip that import.
import type { LoadSpec, Sandbox, SandboxBackend, SandboxShape } from './types.js';

export interface PoolOptions {
  /** Idle sandboxes kept per shape in use (0 disables the pool). */
  size: number;
  /** Shapes to fill at start, before any call asks for them. */
  warmShapes: SandboxShape[];
  /** Most shapes kept filled at once; the least recently used one is dropped first. */
  maxShapes?: number;
  /** Concurrent background starts per shape (keeps refills from starving live calls). */
  refillConcurrency?: number;
  /** Preloaded sandboxes kept per function version with dependencies (0: none). */
  preloadSize?: number;
  /** Most function versions with preloaded sandboxes at once; the least recently used is dropped. */
  maxPreloaded?: number;
  log?: (msg: string) => void;
}

interface ShapeSlot {
  shape: SandboxShape;
  idle: Sandbox[];
  starting: number;
  lastUsed: number;
  /** Set when a background start failed; cleared by the next acquire, so failures do not loop. */
  failing: boolean;
}

interface PreloadSlot extends ShapeSlot {
  spec: LoadSpec;
}

/** Parks a ready sandbox in an idle list, and drops it from there if it dies while waiting. */
function keepIdle(idle: Sandbox[], sandbox: Sandbox): void {
  idle.push(sandbox);
  sandbox.onDeath(() => {
    const i = idle.indexOf(sandbox);
    if (i >= 0) idle.splice(i, 1);
  });
}

export function shapeKey(s: SandboxShape): string {
  return `${s.runtime}:${s.memoryMb}:${s.network ? 'net' : 'nonet'}`;
}

export class SandboxPool {
  private slots = new Map<string, ShapeSlot>();
  private preloaded = new Map<string, PreloadSlot>();
  private closed = false;
  private readonly maxShapes: number;
  private readonly refillConcurrency: number;

  constructor(
    readonly backend: SandboxBackend,
    private readonly opts: PoolOptions,
  ) {
    this.maxShapes = opts.maxShapes ?? 4;
    this.refillConcurrency = opts.refillConcurrency ?? 2;
  }

  start(): void {
    for (const shape of this.opts.warmShapes) if (this.backend.supports(shape.runtime)) this.refill(this.slot(shape));
  }

  /**
   * A generic sandbox of this shape: pre-started when one is waiting, else
   * started now. With `spec` (a version with installed dependencies), one that
   * preloaded them when there is one; and from then on such sandboxes are kept.
   */
  async acquire(shape: SandboxShape, spec?: LoadSpec): Promise<{ sandbox: Sandbox; pooled: boolean; preloaded?: boolean }> {
    if (spec?.packages && (this.opts.preloadSize ?? 0) > 0) {
      const pre = this.preloadSlot(shape, spec);
      pre.lastUsed = Date.now();
      // A failed preload is not retried for this version (a dependency that throws at import would fail again).
      let s = pre.idle.pop();
      while (s && !s.alive) s = pre.idle.pop();
      this.refillPreloaded(pre);
      if (s) return { sandbox: s, pooled: true, preloaded: true };
    }
    const slot = this.slot(shape);
    slot.lastUsed = Date.now();
    slot.failing = false;
    let sandbox = slot.idle.pop();
    while (sandbox && !sandbox.alive) sandbox = slot.idle.pop();
    this.refill(slot);
    if (sandbox) return { sandbox, pooled: true };
    return { sandbox: await this.backend.create(shape), pooled: false };
  }

  /** Keeps preloaded sandboxes for `spec` (a newly deployed version with dependencies); drops those of its older versions. */
  preload(shape: SandboxShape, spec: LoadSpec): void {
    if (this.closed || !spec.packages || (this.opts.preloadSize ?? 0) <= 0) return;
    this.refillPreloaded(this.preloadSlot(shape, spec));
  }

  /** Drops every preloaded sandbox of a function (deleted). */
  forget(functionName: string): void {
    for (const [key, slot] of this.preloaded) {
      if (slot.spec.functionName !== functionName) continue;
      this.preloaded.delete(key);
      for (const s of slot.idle.splice(0)) void s.destroy();
    }
  }

  /** Idle pre-started sandboxes, for stats and the memory budget. */
  idleCount(): number {
    let n = 0;
    for (const s of this.slots.values()) n += s.idle.length;
    for (const s of this.preloaded.values()) n += s.idle.length;
    return n;
  }

  /** Destroys one idle pre-started sandbox (the memory budget reclaims these first). Returns whether one was freed. */
  async shrinkOne(): Promise<boolean> {
    for (const slot of [...this.slots.values(), ...this.preloaded.values()].sort((a, b) => a.lastUsed - b.lastUsed)) {
      const s = slot.idle.shift();
      if (s) {
        await s.destroy();
        return true;
      }
    }
    return false;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.slots.values(), ...this.preloaded.values()].flatMap((s) => s.idle.splice(0));
    await Promise.all(all.map((s) => s.destroy()));
    await this.backend.close();
  }

  private slot(shape: SandboxShape): ShapeSlot {
    const key = shapeKey(shape);
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { shape, idle: [], starting: 0, lastUsed: Date.now(), failing: false };
      this.slots.set(key, slot);
      this.evictShapes();
    }
    return slot;
  }

  private preloadSlot(shape: SandboxShape, spec: LoadSpec): PreloadSlot {
    const key = `${spec.functionName}@${spec.functionVersion}|${shapeKey(shape)}`;
    let slot = this.preloaded.get(key);
    if (!slot) {
      // Older versions of the function will not start again.
      for (const [k, old] of this.preloaded) {
        if (old.spec.functionName === spec.functionName && old.spec.functionVersion !== spec.functionVersion) {
          this.preloaded.delete(k);
          for (const s of old.idle.splice(0)) void s.destroy();
        }
      }
      slot = { shape, spec, idle: [], starting: 0, lastUsed: Date.now(), failing: false };
      this.preloaded.set(key, slot);
      const max = this.opts.maxPreloaded ?? 8;
      while (this.preloaded.size > max) {
        const [oldestKey, oldest] = [...this.preloaded.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0]!;
        this.preloaded.delete(oldestKey);
        for (const s of oldest.idle) void s.destroy();
      }
    }
    return slot;
  }

  private refillPreloaded(slot: PreloadSlot): void {
    const key = `${slot.spec.functionName}@${slot.spec.functionVersion}|${shapeKey(slot.shape)}`;
    while (!this.closed && this.preloaded.get(key) === slot && !slot.failing && slot.idle.length + slot.starting < (this.opts.preloadSize ?? 0) && slot.starting < this.refillConcurrency) {
      slot.starting++;
      let started: Sandbox | undefined;
      this.backend
        .create(slot.shape)
        .then(async (sandbox) => {
          started = sandbox;
          if (!sandbox.preload) throw new Error(`the ${this.backend.tier} tier cannot preload`);
          await sandbox.preload(slot.spec);
          if (this.closed || this.preloaded.get(key) !== slot) return sandbox.destroy();
          keepIdle(slot.idle, sandbox);
        })
        .catch((err: Error) => {
          slot.failing = true;
          void started?.destroy();
          this.opts.log?.(`pool: could not preload ${slot.spec.functionName} version ${slot.spec.functionVersion}: ${err.message}`);
        })
        .finally(() => {
          slot.starting--;
          this.refillPreloaded(slot);
        });
    }
  }

  private evictShapes(): void {
    if (this.slots.size <= this.maxShapes) return;
    const oldest = [...this.slots.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0]!;
    this.slots.delete(oldest[0]);
    for (const s of oldest[1].idle) void s.destroy();
  }

  private refill(slot: ShapeSlot): void {
    while (!this.closed && !slot.failing && slot.idle.length + slot.starting < this.opts.size && slot.starting < this.refillConcurrency) {
      slot.starting++;
      this.backend
        .create(slot.shape)
        .then((sandbox) => {
          if (this.closed || this.slots.get(shapeKey(slot.shape)) !== slot) return sandbox.destroy();
          keepIdle(slot.idle, sandbox);
        })
        .catch((err: Error) => {
          slot.failing = true;
          this.opts.log?.(`pool: could not pre-start a ${shapeKey(slot.shape)} sandbox: ${err.message}`);
        })
        .finally(() => {
          slot.starting--;
          this.refill(slot);
        });
    }
  }
}
