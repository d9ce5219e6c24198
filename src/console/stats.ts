// Per-minute series of one function's calls for the console's charts: calls,
// errors and the p50/p99 duration of each bucket.

export interface Bucket {
  /** Bucket start, epoch seconds (uPlot's x axis unit). */
  t: number;
  calls: number;
  errors: number;
  p50: number | null;
  p99: number | null;
}

/** The q-quantile (0..1) of sorted values, nearest-rank. */
export function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

export function buildSeries(calls: { startedAt: string; durationMs: number; ok: boolean }[], sinceMs: number, untilMs: number, bucketMs: number): Bucket[] {
  const first = Math.floor(sinceMs / bucketMs) * bucketMs;
  const n = Math.max(1, Math.ceil((untilMs - first) / bucketMs));
  const durations: number[][] = Array.from({ length: n }, () => []);
  const errors = new Array<number>(n).fill(0);
  for (const c of calls) {
    const i = Math.floor((Date.parse(c.startedAt) - first) / bucketMs);
    if (i < 0 || i >= n) continue;
    durations[i]!.push(c.durationMs);
    if (!c.ok) errors[i]!++;
  }
  return durations.map((d, i) => {
    d.sort((a, b) => a - b);
    return { t: (first + i * bucketMs) / 1000, calls: d.length, errors: errors[i]!, p50: quantile(d, 0.5), p99: quantile(d, 0.99) };
  });
}
