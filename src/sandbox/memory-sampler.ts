// One timer for the memory watchdogs of every busy sandbox in the process.
// A sandbox joins while it has calls in flight (or, with a userland memory cap,
// for as long as it runs) and leaves after; a call therefore costs a Set insert
// and delete instead of an interval of its own, and N busy sandboxes share one
// wake-up per period instead of N.

type Probe = () => void;

export class MemorySampler {
  private readonly probes = new Set<Probe>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly periodMs: number) {}

  add(probe: Probe): void {
    this.probes.add(probe);
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), this.periodMs);
      // Only busy sandboxes are in the set; their calls keep the process alive, not this timer.
      this.timer.unref();
    }
  }

  delete(probe: Probe): void {
    this.probes.delete(probe);
    if (this.probes.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  get size(): number {
    return this.probes.size;
  }

  private tick(): void {
    for (const probe of this.probes) {
      try {
        probe();
      } catch {
        /* one sandbox's failing probe must not stop the others' */
      }
    }
  }
}

/** Sample period of busy sandboxes: a call that allocates past its cap is caught within this. */
export const MEMORY_SAMPLE_MS = 50;

/** The process-wide sampler the child-process tiers share. */
export const busySampler = new MemorySampler(MEMORY_SAMPLE_MS);

/**
 * Sample period of busy sandboxes whose memory cap the kernel enforces (a cgroup): the
 * samples only refresh the reported peak, which the cgroup keeps itself (memory.peak,
 * memory.max_usage_in_bytes). At 50 ms, 100 long calls cost the server 6,000 file reads a
 * second (docs/benchmarks.md, the container tier's spin workload).
 */
export const PEAK_SAMPLE_MS = 1000;

/** The process-wide sampler of busy sandboxes with a kernel-enforced cap (container tier). */
export const peakSampler = new MemorySampler(PEAK_SAMPLE_MS);

/** How often an idle sandbox with a userland memory cap is checked (its timers run between calls too). */
export const IDLE_SAMPLE_MS = 250;

/** The process-wide sampler of idle sandboxes that have a userland memory cap (process tier). */
export const idleSampler = new MemorySampler(IDLE_SAMPLE_MS);
