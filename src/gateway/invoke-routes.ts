// ANY /run/:name and /run/:name/*: the invoke path. Checks run cheapest first
// (function exists, method allowed, body is JSON); then the worker runs the call.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LaminaError, isLaminaError } from '../errors.js';
import type { GatewayDeps } from './app.js';
import { sendError } from './app.js';
import { splitQualified } from '../versions/store.js';
import type { InvokeOptions } from '../worker/invoke-options.js';

type RunRequest = FastifyRequest<{ Params: { name: string } }>;

function parseEvent(body: unknown): unknown {
  if (!Buffer.isBuffer(body) || body.length === 0) return {};
  const text = body.toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new LaminaError('BadRequest', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

export function registerInvokeRoutes(app: FastifyInstance, deps: GatewayDeps): void {
  const handler = async (req: RunRequest, reply: FastifyReply) => {
    const requestId = randomUUID();
    (req as RunRequest & { laminaRequestId?: string }).laminaRequestId = requestId;
    // `name:3` runs version 3, `name:alias` the alias's version (or its canary's).
    const { name, qualifier } = splitQualified(req.params.name);
    let fv = deps.registry.current(name);
    if (!fv || (qualifier !== undefined && !deps.versions)) {
      deps.metrics.rejected(name, 'FunctionNotFound');
      return sendError(reply, new LaminaError('FunctionNotFound', `function "${req.params.name}" does not exist`), requestId);
    }
    let opts: InvokeOptions | undefined;
    if (qualifier !== undefined) {
      try {
        const { version } = await deps.versions!.resolve(name, qualifier);
        opts = { version };
        if (version !== fv.version) fv = (await deps.registry.getVersion(name, version)) ?? fv;
      } catch (err) {
        deps.metrics.rejected(name, 'FunctionNotFound');
        const message = isLaminaError(err) ? err.message : `function "${req.params.name}" does not exist`;
        return sendError(reply, new LaminaError('FunctionNotFound', message), requestId);
      }
    }
    const methods = fv.manifest.http.methods as string[];
    if (!methods.includes(req.method)) {
      deps.metrics.rejected(name, 'MethodNotAllowed');
      reply.header('allow', methods.join(', '));
      return sendError(reply, new LaminaError('MethodNotAllowed', `function "${name}" does not accept ${req.method} (allowed: ${methods.join(', ')})`), requestId);
    }
    let event: unknown;
    try {
      event = parseEvent(req.body);
    } catch (err) {
      deps.metrics.rejected(name, 'BadRequest');
      return sendError(reply, err as LaminaError, requestId);
    }
    try {
      const { outcome, record } = await deps.worker.invoke(name, requestId, event, opts);
      deps.metrics.observe(record);
      reply.headers({
        'x-lamina-request-id': requestId,
        'x-lamina-cold-start': record.cold ? '1' : '0',
        'x-lamina-duration-ms': record.durationMs.toFixed(3),
        'x-lamina-billed-ms': String(record.billedMs),
        'x-lamina-worker': record.worker,
        'x-lamina-instance': record.instance,
        'x-lamina-version': String(record.version),
      });
      if (outcome.ok) return reply.code(200).type('application/json; charset=utf-8').send(JSON.stringify(outcome.value === undefined ? null : outcome.value));
      const e = outcome.error!;
      return sendError(reply, new LaminaError(e.type, e.message, e.stack ? { stack: e.stack } : {}), requestId);
    } catch (err) {
      const le = isLaminaError(err) ? err : new LaminaError('InternalError', (err as Error).message);
      if (le.type === 'InternalError') deps.log.error({ err }, 'invoke failed');
      deps.metrics.rejected(name, le.type);
      const worker = (err as { worker?: string | null }).worker;
      if (worker !== null) reply.header('x-lamina-worker', worker ?? deps.worker.id);
      return sendError(reply, le, requestId);
    }
  };
  app.all<{ Params: { name: string } }>('/run/:name', handler);
  app.all<{ Params: { name: string } }>('/run/:name/*', handler);
}
