// Starts the triggers of one process that runs calls (`lamina up`, or a
// cluster worker): the dispatcher that feeds the queue to the worker and the
// scheduler. A gateway of a cluster only enqueues and reads; it starts neither.
import { randomBytes } from 'node:crypto';
import type { Db } from '../store/db.js';
import { asyncConfig, type AsyncConfig } from './config.js';
import { Dispatcher, type DispatcherDeps } from './dispatcher.js';
import type { AsyncMetrics } from './metrics.js';
import type { AsyncQueue } from './queue.js';
import { Pruner } from './retention.js';
import { Scheduler, type ScheduleCatalog } from './scheduler.js';

export interface TriggersOptions {
  db: Db;
  queue: AsyncQueue;
  catalog: ScheduleCatalog;
  workerId: string;
  invoke: DispatcherDeps['invoke'];
  warm?: DispatcherDeps['warm'];
  metrics?: AsyncMetrics;
  observe?: (r: Parameters<NonNullable<NonNullable<DispatcherDeps['observe']>['result']>>[0]) => void;
  /** Single node: every Running event at start was cut by the last stop or crash; take them all back now. */
  recoverAll: boolean;
  config?: AsyncConfig;
  log: (msg: string) => void;
}

export interface RunningTriggers {
  dispatcher: Dispatcher;
  scheduler: Scheduler;
  /** Stops schedules and claims, waits for the async calls in flight. */
  stop(): Promise<void>;
}

export async function startTriggers(o: TriggersOptions): Promise<RunningTriggers> {
  const config = o.config ?? asyncConfig();
  if (o.recoverAll) {
    const n = await o.queue.takeOver({ all: true });
    if (n > 0) o.log(`async queue: ${n} event(s) cut by the last stop will run again`);
  }
  const dispatcher = new Dispatcher({
    queue: o.queue,
    invoke: o.invoke,
    manifest: (name) => o.catalog.current(name)?.manifest,
    warm: o.warm,
    owner: `${o.workerId}/${randomBytes(6).toString('hex')}`,
    config,
    observe: {
      result: o.observe,
      retry: (fn) => o.metrics?.retry(fn),
      expired: (fn) => o.metrics?.expiredOne(fn),
      finished: (fn, status) => o.metrics?.done(fn, status),
    },
    log: o.log,
  });
  const scheduler = new Scheduler(o.db, o.queue, o.catalog, { fired: (fn) => o.metrics?.fired(fn), log: o.log });
  const pruner = new Pruner(o.db, config.retentionMs, o.log);
  dispatcher.start();
  scheduler.start();
  pruner.start();
  return {
    dispatcher,
    scheduler,
    async stop() {
      scheduler.stop();
      await Promise.all([dispatcher.stop(), pruner.stop()]);
    },
  };
}
