// Prometheus metrics for /metrics: counters updated per call by the gateway,
// gauges read from the worker at scrape time (so the hot path never touches them).
import client from 'prom-client';
import type { InvocationRecord } from '../metering/types.js';
import type { WorkerStats } from '../worker/worker.js';

export class Metrics {
  readonly registry = new client.Registry();
  private invocations: client.Counter<'function' | 'status'>;
  private coldStarts: client.Counter<'function'>;
  private duration: client.Histogram<'function'>;
  private throttles: client.Counter<'function' | 'reason'>;

  constructor(stats: () => WorkerStats) {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'lamina_process_' });
    this.invocations = new client.Counter({ name: 'lamina_invocations_total', help: 'Invocations by function and final status.', labelNames: ['function', 'status'], registers: [this.registry] });
    this.coldStarts = new client.Counter({ name: 'lamina_cold_starts_total', help: 'Invocations served by a freshly started instance.', labelNames: ['function'], registers: [this.registry] });
    this.duration = new client.Histogram({
      name: 'lamina_invocation_duration_seconds',
      help: 'Duration of invocations as billed before rounding.',
      labelNames: ['function'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    });
    this.throttles = new client.Counter({ name: 'lamina_rejected_total', help: 'Calls refused before reaching an instance (429, 404, 405, 413, 400).', labelNames: ['function', 'reason'], registers: [this.registry] });
    // Gauges are read from the worker when scraped; each reads one cheap snapshot.
    new client.Gauge({
      name: 'lamina_instances',
      help: 'Instances by function and state.',
      labelNames: ['function', 'state'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const f of stats().functions) for (const state of ['starting', 'busy', 'idle', 'paused'] as const) this.set({ function: f.name, state }, f[state]);
      },
    });
    new client.Gauge({
      name: 'lamina_queue_depth',
      help: 'Calls waiting for an instance, by function.',
      labelNames: ['function'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const f of stats().functions) this.set({ function: f.name }, f.queue);
      },
    });
    new client.Gauge({
      name: 'lamina_memory_reserved_mb',
      help: 'Memory reserved by instances in the worker budget.',
      registers: [this.registry],
      collect() {
        this.set(stats().memory.reservedMb);
      },
    });
    new client.Gauge({
      name: 'lamina_memory_budget_mb',
      help: 'The worker memory budget.',
      registers: [this.registry],
      collect() {
        this.set(stats().memory.budgetMb);
      },
    });
  }

  observe(r: InvocationRecord): void {
    this.invocations.inc({ function: r.function, status: r.status });
    if (r.cold) this.coldStarts.inc({ function: r.function });
    this.duration.observe({ function: r.function }, r.durationMs / 1000);
  }

  rejected(fn: string, reason: string): void {
    this.throttles.inc({ function: fn, reason });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
