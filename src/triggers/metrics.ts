// Prometheus series of the async queue and schedules. Depth, oldest age and
// in-flight are read from the queue's table at scrape time (so in a cluster
// every gateway reports the shared queue); retries, expirations and firings
// are counted where they happen (the node or worker that ran them).
import client from 'prom-client';
import type { AsyncQueue, FinalStatus } from './queue.js';

export class AsyncMetrics {
  private retries: client.Counter<'function'>;
  private expired: client.Counter<'function'>;
  private firings: client.Counter<'function'>;
  private finished: client.Counter<'function' | 'status'>;

  constructor(registry: client.Registry, queue: AsyncQueue) {
    const reg = [registry];
    this.retries = new client.Counter({ name: 'lamina_async_retries_total', help: 'Failed async attempts scheduled for a retry.', labelNames: ['function'], registers: reg });
    this.expired = new client.Counter({ name: 'lamina_async_expired_total', help: 'Async events dropped for outliving maxEventAgeS.', labelNames: ['function'], registers: reg });
    this.firings = new client.Counter({ name: 'lamina_schedule_firings_total', help: 'Schedule ticks fired (once per tick across the deployment).', labelNames: ['function'], registers: reg });
    this.finished = new client.Counter({ name: 'lamina_async_events_total', help: 'Async events by final status.', labelNames: ['function', 'status'], registers: reg });
    // One read of the queue serves the three gauges of a scrape.
    let snapshot: Promise<Awaited<ReturnType<AsyncQueue['stats']>>> | undefined;
    const read = () => {
      snapshot ??= queue.stats().finally(() => setTimeout(() => (snapshot = undefined), 50).unref());
      return snapshot;
    };
    const gauge = (name: string, help: string, pick: (s: Awaited<ReturnType<AsyncQueue['stats']>>[number]) => number) =>
      new client.Gauge({
        name,
        help,
        labelNames: ['function'],
        registers: reg,
        async collect() {
          this.reset();
          for (const s of await read().catch(() => [])) this.set({ function: s.function }, pick(s));
        },
      });
    gauge('lamina_async_queue_depth', 'Async events waiting in the durable queue, by function.', (s) => s.depth);
    gauge('lamina_async_oldest_age_seconds', 'Age of the oldest waiting or running async event, by function.', (s) => s.oldestAgeS);
    gauge('lamina_async_inflight', 'Async events being run, by function.', (s) => s.inflight);
  }

  retry(fn: string): void {
    this.retries.inc({ function: fn });
  }
  expiredOne(fn: string): void {
    this.expired.inc({ function: fn });
  }
  fired(fn: string): void {
    this.firings.inc({ function: fn });
  }
  done(fn: string, status: FinalStatus): void {
    this.finished.inc({ function: fn, status });
  }
}
