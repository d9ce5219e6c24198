// One bound on the bytes of partial frames buffered by all of this process's
// channels together: each sandbox may send lines up to the frame cap, but a
// dozen sandboxes doing it at once must not fill the server's memory. A
// channel that cannot take more closes (its sandbox dies).

const DEFAULT_MB = 256;

export class BufferBudget {
  private used = 0;
  constructor(public limitBytes: number) {}

  get usedBytes(): number {
    return this.used;
  }

  take(n: number): boolean {
    if (this.used + n > this.limitBytes) return false;
    this.used += n;
    return true;
  }

  release(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

function fromEnv(): number {
  const raw = process.env.LAMINA_FRAME_BUFFER_MB;
  const n = raw ? Number(raw) : DEFAULT_MB;
  return (Number.isFinite(n) && n > 0 ? n : DEFAULT_MB) * 1024 * 1024;
}

/** The process-wide budget (LAMINA_FRAME_BUFFER_MB, default 256). */
export const bufferBudget = new BufferBudget(fromEnv());
