// GET /api/v1/invocations/:requestId for every trigger: the metering record
// of the last attempt, overlaid with the queue's status, attempts, trigger and
// result or error for async calls.
import type { InvocationStore } from '../metering/store.js';
import type { AsyncQueue } from './queue.js';

export async function invocationView(invocations: InvocationStore, queue: AsyncQueue | undefined, requestId: string): Promise<Record<string, unknown> | undefined> {
  const ev = await queue?.get(requestId);
  if (!ev) {
    const rec = await invocations.get(requestId);
    return rec && { ...rec, trigger: rec.trigger ?? 'http', attempts: 1 };
  }
  // Retries are metered as requestId#attempt: show the last attempt's reading.
  const metered = ev.attempts > 1 ? ((await invocations.get(`${requestId}#${ev.attempts}`)) ?? (await invocations.get(requestId))) : await invocations.get(requestId);
  return { ...(metered ?? {}), ...ev, requestId };
}
