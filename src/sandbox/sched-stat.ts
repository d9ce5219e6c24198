// A process's time on a CPU and waiting for one, from /proc/PID/schedstat (the
// kernel's sched_info: "run ns, run-queue wait ns, slices" of the main thread, where
// a Node runtime runs its JavaScript). A task that is runnable nearly all the time
// (on a CPU or waiting for one) is CPU-bound, however many others share the cores:
// the worker's scale-out gate reads it (src/worker/scale-gate.ts).
import { readFileSync } from 'node:fs';

export interface SchedSample {
  cpuMs: number;
  waitMs: number;
}

/** Throws when the process is gone (ENOENT). */
export function readSchedStat(pid: number): SchedSample {
  const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ');
  return { cpuMs: Number(run) / 1e6, waitMs: Number(wait) / 1e6 };
}

/** Summed over the processes listed in a cgroup.procs file (a container: its init, bwrap, the runtime); ones that just exited are skipped. */
export function readSchedStatOfProcs(procsFile: string): SchedSample {
  const total = { cpuMs: 0, waitMs: 0 };
  for (const line of readFileSync(procsFile, 'utf8').split('\n')) {
    const pid = Number(line);
    if (!line || !Number.isInteger(pid)) continue;
    try {
      const s = readSchedStat(pid);
      total.cpuMs += s.cpuMs;
      total.waitMs += s.waitMs;
    } catch {
      /* exited between the two reads */
    }
  }
  return total;
}
