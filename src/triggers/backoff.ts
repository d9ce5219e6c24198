// Retry delays of async events: exponential from a base, doubling per failed
// attempt, with "equal jitter" (half fixed, half random) so retries of many
// events that failed together spread out instead of arriving in lockstep.

/** Longest delay between two attempts, whatever the base and attempt count. */
export const MAX_BACKOFF_MS = 15 * 60_000;

/**
 * Delay before the next attempt after `failedAttempts` failures (1 = the first
 * attempt failed): base * 2^(failedAttempts-1), of which the upper half is random.
 * `random` is injectable for tests (a function returning [0, 1)).
 */
export function backoffMs(failedAttempts: number, baseMs: number, random: () => number = Math.random): number {
  if (!Number.isFinite(failedAttempts) || failedAttempts < 1) failedAttempts = 1;
  const exp = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.min(30, failedAttempts - 1));
  const half = exp / 2;
  return Math.round(half + half * random());
}
