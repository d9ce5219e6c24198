// Whether starting one more instance of a function can add throughput. Two rules:
//  - Slow start: a burst of waiting calls does not launch every start at once; a
//    function may have as many starts in flight as the node has cores, or as it has
//    ready instances (so it still doubles per round of starts).
//  - The cores' limit: a function whose instances already take most of a busy node's
//    CPU is limited by the cores, not by its instance count. Another instance would
//    only split the same cores further and cost a sandbox's boot in CPU (a third of a
//    second on the container tier), so its calls wait for a free instance instead.
// CPU is read from kernel counters (/proc/stat, each sandbox's cgroup or /proc/PID/stat)
// only while some function has calls waiting. docs/architecture.md ("Scale-out").
import { readFileSync } from 'node:fs';

/** What the gate needs from a function's runner. */
export interface GateSubject {
  /** Calls are waiting for an instance. */
  readonly waiting: boolean;
  /** CPU time used so far by each live instance (undefined: the tier cannot tell). */
  cpuReadings(): Iterable<[id: string, cpuMs: number | undefined]>;
  /** Called after a sample that lets it start more. */
  rescale(): void;
}

/** Node-wide CPU time, summed over all cores (ms). */
export interface NodeCpu {
  busyMs: number;
  totalMs: number;
}

/** Clock ticks per second of /proc/stat (USER_HZ). */
const USER_HZ = 100;

/** /proc/stat's first line: user nice system idle iowait irq softirq steal (guest time is inside user). Steal counts as busy: the cores were not ours. */
export function readNodeCpu(): NodeCpu | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').slice(0, 256).split('\n', 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (f.length < 5 || f.some((n) => !Number.isFinite(n))) return undefined;
    const total = f.reduce((a, b) => a + b, 0);
    const idle = f[3]! + f[4]!;
    return { busyMs: ((total - idle) * 1000) / USER_HZ, totalMs: (total * 1000) / USER_HZ };
  } catch {
    return undefined;
  }
}

export interface ScaleGateOptions {
  cores: number;
  /** Sampling period while calls wait (ms). */
  intervalMs?: number;
  /** The node is busy from this share of its cores' time on. */
  busyShare?: number;
  /** A function takes "most" of the busy CPU from this share on. */
  functionShare?: number;
  readNode?: () => NodeCpu | undefined;
  now?: () => number;
}

interface SubjectState {
  readings: Map<string, number>;
  at: number;
  /** The last sample found the function at the cores' limit. */
  full: boolean;
  fullAt: number;
}

export class ScaleGate {
  private readonly cores: number;
  private readonly intervalMs: number;
  private readonly busyShare: number;
  private readonly functionShare: number;
  private readonly readNode: () => NodeCpu | undefined;
  private readonly now: () => number;
  private readonly subjects = new Map<GateSubject, SubjectState>();
  private node: { cpu: NodeCpu; at: number } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(o: ScaleGateOptions) {
    this.cores = Math.max(1, o.cores);
    this.intervalMs = o.intervalMs ?? 100;
    this.busyShare = o.busyShare ?? 0.9;
    this.functionShare = o.functionShare ?? 0.5;
    this.readNode = o.readNode ?? readNodeCpu;
    this.now = o.now ?? Date.now;
  }

  /** Whether `s` may start one more instance now, given its ready and starting instances. */
  mayStart(s: GateSubject, counts: { ready: number; starting: number }): boolean {
    if (counts.ready + counts.starting === 0) return true;
    if (counts.starting >= Math.max(this.cores, counts.ready)) return this.hold(s);
    const st = this.subjects.get(s);
    // A verdict older than a few periods (the sampler stopped, the load changed) is not trusted.
    if (st?.full && counts.ready > 0 && this.now() - st.fullAt <= 3 * this.intervalMs) return this.hold(s);
    return true;
  }

  /** Samples `s` from now on while its calls wait; it is asked to rescale after each sample. */
  private hold(s: GateSubject): false {
    if (!this.subjects.has(s)) this.subjects.set(s, { readings: new Map(), at: 0, full: false, fullAt: 0 });
    if (!this.timer) {
      this.sampleNode();
      this.sampleSubject(s, this.subjects.get(s)!, undefined);
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      this.timer.unref();
    }
    return false;
  }

  /** One sample of the node and of every subject with calls waiting; exported for tests. */
  tick(): void {
    const prev = this.node;
    this.sampleNode();
    const busy = prev && this.node ? { busyMs: this.node.cpu.busyMs - prev.cpu.busyMs, totalMs: this.node.cpu.totalMs - prev.cpu.totalMs } : undefined;
    for (const [s, st] of this.subjects) {
      if (!s.waiting) {
        this.subjects.delete(s);
        continue;
      }
      this.sampleSubject(s, st, busy);
    }
    if (this.subjects.size === 0) this.stop();
    // After the verdicts: a subject may start again, or keep waiting (it is sampled on).
    for (const s of [...this.subjects.keys()]) s.rescale();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.node = undefined;
  }

  private sampleNode(): void {
    const cpu = this.readNode();
    this.node = cpu ? { cpu, at: this.now() } : undefined;
  }

  private sampleSubject(s: GateSubject, st: SubjectState, busy: NodeCpu | undefined): void {
    const now = this.now();
    const readings = new Map<string, number>();
    let used = 0;
    let known = 0;
    for (const [id, ms] of s.cpuReadings()) {
      if (ms === undefined) continue;
      readings.set(id, ms);
      const before = st.readings.get(id);
      if (before !== undefined && ms >= before) {
        used += ms - before;
        known++;
      }
    }
    const elapsed = now - st.at;
    st.readings = readings;
    st.at = now;
    st.full = known > 0 && elapsed > 0 && this.atCoresLimit(used, elapsed, busy);
    if (st.full) st.fullAt = now;
  }

  /** `used`: the function's CPU ms over `elapsed` wall ms; `busy`: the node's over the same period, when known. */
  private atCoresLimit(used: number, elapsed: number, busy: NodeCpu | undefined): boolean {
    if (busy && busy.totalMs > 0) return busy.busyMs >= this.busyShare * busy.totalMs && used >= this.functionShare * busy.busyMs;
    // No node counters: the function alone takes nearly all the cores.
    return used >= this.busyShare * this.cores * elapsed;
  }
}
