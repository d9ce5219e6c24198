// Admin routes of the triggers: GET /api/v1/queue (depth, oldest age and
// in-flight count per function, next schedule firings) and GET /api/v1/schedules.
import type { FastifyInstance } from 'fastify';
import type { AsyncQueue } from './queue.js';
import { scheduleViews, type ScheduleCatalog } from './scheduler.js';

export function registerTriggerRoutes(app: FastifyInstance, deps: { queue: AsyncQueue; catalog: Pick<ScheduleCatalog, 'current' | 'list'> }): void {
  app.get('/queue', async () => {
    const functions = await deps.queue.stats();
    return {
      functions,
      total: { depth: functions.reduce((n, f) => n + f.depth, 0), inflight: functions.reduce((n, f) => n + f.inflight, 0), oldestAgeS: Math.max(0, ...functions.map((f) => f.oldestAgeS)) },
      schedules: scheduleViews(deps.catalog),
    };
  });
  app.get('/schedules', async () => ({ schedules: scheduleViews(deps.catalog) }));
}
