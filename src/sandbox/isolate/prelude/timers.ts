// setTimeout & co. on the host's clock. The host fires timers only while the
// isolate serves a call (due ones wait for the next call), so an idle isolate
// runs no code, as a frozen Lambda instance would not.
import { currentCall, enter } from './calls.js';

interface Timer {
  cb: (...args: unknown[]) => void;
  args: unknown[];
  call: string | null;
  repeat: number | undefined;
}

const MAX_TIMERS = 10_000;

export function makeTimers(host: { timer(id: number, ms: number): void; clear(id: number): void }, report: (err: unknown) => void) {
  const timers = new Map<number, Timer>();
  let next = 1;
  const delay = (ms: unknown) => Math.min(Math.max(0, Number(ms) || 0), 2 ** 31 - 1);
  const add = (cb: unknown, ms: unknown, args: unknown[], repeat: boolean): number => {
    if (typeof cb !== 'function') throw new TypeError('The "callback" argument must be a function (isolates do not evaluate strings)');
    if (timers.size >= MAX_TIMERS) throw new RangeError(`too many pending timers (at most ${MAX_TIMERS})`);
    const id = next++;
    const d = delay(ms);
    timers.set(id, { cb: cb as Timer['cb'], args, call: currentCall(), repeat: repeat ? Math.max(1, d) : undefined });
    host.timer(id, d);
    return id;
  };
  const clear = (id: unknown): void => {
    const n = Number(id);
    if (timers.delete(n)) host.clear(n);
  };
  const fire = (id: number): void => {
    const t = timers.get(id);
    if (!t) return;
    enter(t.call);
    if (t.repeat === undefined) timers.delete(id);
    else host.timer(id, t.repeat);
    try {
      t.cb(...t.args);
    } catch (err) {
      report(err);
    }
  };
  return {
    fire,
    globals: {
      setTimeout: (cb: unknown, ms?: unknown, ...args: unknown[]) => add(cb, ms, args, false),
      setInterval: (cb: unknown, ms?: unknown, ...args: unknown[]) => add(cb, ms, args, true),
      clearTimeout: clear,
      clearInterval: clear,
      queueMicrotask: (cb: unknown) => {
        if (typeof cb !== 'function') throw new TypeError('The "callback" argument must be a function');
        void Promise.resolve().then(() => {
          try {
            (cb as () => void)();
          } catch (err) {
            report(err);
          }
        });
      },
    },
  };
}
