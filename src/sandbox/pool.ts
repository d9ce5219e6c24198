// Pre-started generic sandboxes, so a cold start is a specialization (load code
// into a waiting runtime) rather than a spawn. Sandboxes are grouped by shape
// (tier-specific startup parameters such as the heap cap); shapes in use are
// kept topped up in the background.
import type { Sandbox, SandboxBackend, SandboxShape } from './types.js';

export interface PoolOptions {
  /** Idle sandboxes kept per shape in use (0 disables the pool). */
  size: number;
  /** Shapes to fill at start, before any call asks for them. */
  warmShapes: SandboxShape[];
  /** Most shapes kept filled at once; the least recently used one is dropped first. */
  maxShapes?: number;
  /** Concurrent background starts per shape (keeps refills from starving live calls). */
  refillConcurrency?: number;
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

export function shapeKey(s: SandboxShape): string {
  return `${s.runtime}:${s.memoryMb}:${s.network ? 'net' : 'nonet'}`;
}

export class SandboxPool {
  private slots = new Map<string, ShapeSlot>();
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

  /** A generic sandbox of this shape: pre-started when one is waiting, else started now. */
  async acquire(shape: SandboxShape): Promise<{ sandbox: Sandbox; pooled: boolean }> {
    const slot = this.slot(shape);
    slot.lastUsed = Date.now();
    slot.failing = false;
    let sandbox = slot.idle.pop();
    while (sandbox && !sandbox.alive) sandbox = slot.idle.pop();
    this.refill(slot);
    if (sandbox) return { sandbox, pooled: true };
    return { sandbox: await this.backend.create(shape), pooled: false };
  }

  /** Idle pre-started sandboxes, for stats and the memory budget. */
  idleCount(): number {
    let n = 0;
    for (const s of this.slots.values()) n += s.idle.length;
    return n;
  }

  /** Destroys one idle pre-started sandbox (the memory budget reclaims these first). Returns whether one was freed. */
  async shrinkOne(): Promise<boolean> {
    for (const slot of [...this.slots.values()].sort((a, b) => a.lastUsed - b.lastUsed)) {
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
    const all = [...this.slots.values()].flatMap((s) => s.idle.splice(0));
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
          slot.idle.push(sandbox);
          sandbox.onDeath(() => {
            const i = slot.idle.indexOf(sandbox);
            if (i >= 0) slot.idle.splice(i, 1);
          });
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
