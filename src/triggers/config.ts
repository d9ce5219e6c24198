// Settings of the async queue, dispatcher and schedules, from LAMINA_ASYNC_*
// variables (docs/configuration.md). Read once at start.

export interface AsyncConfig {
  /** First retry delay; doubles per failed attempt (LAMINA_ASYNC_RETRY_BASE_MS, 1000). */
  retryBaseMs: number;
  /** Share of a function's `concurrency` that async events may hold at once (LAMINA_ASYNC_SHARE, 0.5). */
  share: number;
  /** Most async events this node runs at once, over all functions (LAMINA_ASYNC_MAX_INFLIGHT, 32). */
  maxInflight: number;
  /** A claimed event whose owner stops renewing its lease is taken over after this long (LAMINA_ASYNC_LEASE_MS, 6000). */
  leaseMs: number;
  /** How often an idle dispatcher looks for work it was not told about (LAMINA_ASYNC_POLL_MS, 500). */
  pollMs: number;
  /** Ended events and fired ticks are deleted this long after they ended (LAMINA_ASYNC_RETENTION_S, 7 days). */
  retentionMs: number;
}

function num(env: NodeJS.ProcessEnv, key: string, fallback: number, min: number, max: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${key} must be a number from ${min} to ${max} (got "${raw}")`);
  return n;
}

export function asyncConfig(env: NodeJS.ProcessEnv = process.env): AsyncConfig {
  return {
    retryBaseMs: num(env, 'LAMINA_ASYNC_RETRY_BASE_MS', 1000, 1, 3_600_000),
    share: num(env, 'LAMINA_ASYNC_SHARE', 0.5, 0.01, 1),
    maxInflight: Math.floor(num(env, 'LAMINA_ASYNC_MAX_INFLIGHT', 32, 1, 10_000)),
    leaseMs: num(env, 'LAMINA_ASYNC_LEASE_MS', 6000, 500, 3_600_000),
    pollMs: num(env, 'LAMINA_ASYNC_POLL_MS', 500, 10, 60_000),
    // At least a minute: a tick's row must outlive the few seconds in which other nodes may try to fire it.
    retentionMs: num(env, 'LAMINA_ASYNC_RETENTION_S', 604_800, 60, 315_360_000) * 1000,
  };
}
