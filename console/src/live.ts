// One event stream per tab, shared by every page through a small listener set.
import { useEffect } from 'preact/hooks';
import type { LiveMessage } from './api.js';

const listeners = new Set<(m: LiveMessage) => void>();

export function dispatch(m: LiveMessage): void {
  for (const fn of listeners) fn(m);
}

/** Calls `fn` for every live message while the component is mounted. */
export function useLive(fn: (m: LiveMessage) => void, deps: unknown[]): void {
  useEffect(() => {
    listeners.add(fn);
    return () => void listeners.delete(fn);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
}

/** Runs `fn` at most once per `ms`, trailing (refresh bursts of events in one request). */
export function throttle(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      fn();
    }, ms);
  };
}
