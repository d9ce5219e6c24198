// Whether starting one more instance of a function can add throughput. Two rules:
//  - Slow start: a burst of waiting calls does not launch every start at once; a
//    function may have 4 starts in flight per core, or as many as it has ready
//    instances (so it still doubles per round of starts), until a sample shows its
//    instances mostly asleep (calls that wait on I/O): from then on it scales out as
//    fast as calls arrive.
//  - The cores' limit: a function that already has as many CPU-bound instances as the
//    node has cores gains nothing from another; it would split the same cores further
//    and cost a sandbox's boot in CPU (a third of a second on the container tier), so
//    its calls wait for a free instance instead.
// "CPU-bound" is read from the kernel's scheduler counters (/proc/PID/schedstat): an
// instance that was on a CPU or waiting for one nearly all the time wants CPU, however
// many others share the cores; one waiting on I/O is asleep. Sampled only while the
// function has calls waiting. docs/architecture.md ("Scale-out").
import type { SchedSample } from '../sandbox/sched-stat.js';

/** What the gate needs from a function's runner. */
export interface GateSubject {
  /** Calls are waiting for an instance. */
  readonly waiting: boolean;
  /** Scheduler counters of each ready instance (undefined: the tier cannot tell). */
  schedReadings(): Iterable<[id: string, sample: SchedSample | undefined]>;
  /** Called after a sample that lets it start more. */
  rescale(): void;
}

export interface ScaleGateOptions {
  cores: number;
  /** Sampling period while calls wait (ms). */
  intervalMs?: number;
  /** Starts in flight allowed per core before the function has that many ready instances. */
  startsPerCore?: number;
  /** An instance runnable (on a CPU or waiting for one) this share of the time is CPU-bound. */
  runnableShare?: number;
  now?: () => number;
}

interface SubjectState {
  readings: Map<string, SchedSample>;
  at: number;
  /** The last sample found the function at the cores' limit. */
  full: boolean;
  /** The last sample found more of its instances asleep than CPU-bound. */
  asleep: boolean;
}

export class ScaleGate {
  private readonly cores: number;
  private readonly intervalMs: number;
  private readonly window: number;
  private readonly runnableShare: number;
  private readonly now: () => number;
  private readonly subjects = new Map<GateSubject, SubjectState>();
  private timer: NodeJS.Timeout | undefined;

  constructor(o: ScaleGateOptions) {
    this.cores = Math.max(1, o.cores);
    this.intervalMs = o.intervalMs ?? 50;
    this.window = this.cores * (o.startsPerCore ?? 4);
    this.runnableShare = o.runnableShare ?? 0.8;
    this.now = o.now ?? Date.now;
  }

  /** Whether `s` may start one more instance now, given its ready and starting instances. */
  mayStart(s: GateSubject, counts: { ready: number; starting: number }): boolean {
    const st = this.watch(s);
    if (counts.ready + counts.starting === 0) return true;
    if (counts.starting >= Math.max(this.window, counts.ready) && !st.asleep) return false;
    // The last sample's verdict, however late the timer (a server busy spawning sandboxes):
    // expiring it by the clock would let exactly such a burst through.
    return !(st.full && counts.ready > 0);
  }

  /** Samples `s` from now on while its calls wait; it is asked to rescale after each sample. */
  private watch(s: GateSubject): SubjectState {
    let st = this.subjects.get(s);
    if (!st) {
      st = { readings: new Map(), at: this.now(), full: false, asleep: false };
      this.subjects.set(s, st);
      this.sample(s, st);
    }
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      this.timer.unref();
    }
    return st;
  }

  /** One sample of every subject with calls waiting; exported for tests. */
  tick(): void {
    for (const [s, st] of this.subjects) {
      if (s.waiting) this.sample(s, st);
      else this.subjects.delete(s);
    }
    if (this.subjects.size === 0) this.stop();
    // After the verdicts: a subject may start again, or keep waiting (it is sampled on).
    for (const s of [...this.subjects.keys()]) s.rescale();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private sample(s: GateSubject, st: SubjectState): void {
    const now = this.now();
    const elapsed = now - st.at;
    const readings = new Map<string, SchedSample>();
    let cpuBound = 0;
    let asleep = 0;
    for (const [id, r] of s.schedReadings()) {
      if (!r) continue;
      readings.set(id, r);
      const before = st.readings.get(id);
      if (!before || elapsed <= 0) continue;
      if (r.cpuMs + r.waitMs - before.cpuMs - before.waitMs >= this.runnableShare * elapsed) cpuBound++;
      else asleep++;
    }
    st.readings = readings;
    st.at = now;
    st.full = cpuBound >= this.cores;
    st.asleep = asleep > cpuBound;
  }
}
