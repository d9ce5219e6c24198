// How a duration becomes a bill. A duration is first taken to the nearest whole
// millisecond (the resolution of the runtimes' timers, so sub-millisecond
// timer and scheduling jitter is neither charged nor credited), then rounded up
// to the billing granularity, never less than one granule.

export function billedMs(durationMs: number, granularityMs: number): number {
  const whole = Math.max(1, Math.round(durationMs));
  return Math.ceil(whole / granularityMs) * granularityMs;
}

export function gbSeconds(memoryMb: number, billed: number): number {
  return (memoryMb / 1024) * (billed / 1000);
}

export interface Prices {
  /** Price of one GB-second of compute. */
  perGbSecond: number;
  /** Price of one request. */
  perRequest: number;
}

/** AWS Lambda's public x86 prices (first tier): $0.0000166667 per GB-s and $0.20 per million requests. */
export const DEFAULT_PRICES: Prices = { perGbSecond: 0.0000166667, perRequest: 0.0000002 };

export function cost(p: Prices, invocations: number, gbs: number): { compute: number; requests: number; total: number } {
  const compute = gbs * p.perGbSecond;
  const requests = invocations * p.perRequest;
  return { compute, requests, total: compute + requests };
}
