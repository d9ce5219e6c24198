// The node's memory budget: every instance (starting, warm or paused) reserves
// its function's memoryMb. When full, the worker evicts idle instances, least
// recently used first, and callers wait a bounded time for room.

export class MemoryBudget {
  private reserved = 0;
  private waiters: { mb: number; resolve: (ok: boolean) => void; timer: NodeJS.Timeout }[] = [];

  constructor(readonly totalMb: number) {}

  get reservedMb(): number {
    return this.reserved;
  }

  tryReserve(mb: number): boolean {
    if (this.reserved + mb > this.totalMb) return false;
    this.reserved += mb;
    return true;
  }

  /** Waits up to `timeoutMs` for `mb` to fit; resolves whether it was reserved. */
  reserve(mb: number, timeoutMs: number): Promise<boolean> {
    if (mb > this.totalMb) return Promise.resolve(false);
    if (this.waiters.length === 0 && this.tryReserve(mb)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        mb,
        resolve,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          resolve(false);
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  release(mb: number): void {
    this.reserved = Math.max(0, this.reserved - mb);
    // First come, first served: a big waiter is not overtaken by small ones.
    while (this.waiters.length > 0 && this.tryReserve(this.waiters[0]!.mb)) {
      const w = this.waiters.shift()!;
      clearTimeout(w.timer);
      w.resolve(true);
    }
  }

  get waiting(): number {
    return this.waiters.length;
  }
}
