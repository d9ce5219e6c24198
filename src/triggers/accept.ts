// The async branch of the invoke route: after the same checks as a
// synchronous call, the event is committed to the queue and answered 202.
import type { FastifyReply } from 'fastify';
import type { AsyncQueue } from './queue.js';

export const INVOCATION_TYPE_HEADER = 'x-lamina-invocation-type';

/** Whether a request asks for an asynchronous call (`x-lamina-invocation-type: Event`, any case). */
export function wantsAsync(headers: Record<string, string | string[] | undefined>): boolean {
  const v = headers[INVOCATION_TYPE_HEADER];
  return typeof v === 'string' && v.trim().toLowerCase() === 'event';
}

/** Commits the event, then answers 202 {"requestId"}; a store failure propagates (500, nothing accepted). */
export async function acceptEvent(queue: AsyncQueue, reply: FastifyReply, a: { function: string; requestId: string; event: unknown; version?: number }): Promise<FastifyReply> {
  await queue.enqueue({ function: a.function, event: a.event, requestId: a.requestId, trigger: 'event', ...(a.version !== undefined ? { version: a.version } : {}) });
  reply.header('x-lamina-request-id', a.requestId);
  return reply.code(202).type('application/json; charset=utf-8').send(JSON.stringify({ requestId: a.requestId }));
}
