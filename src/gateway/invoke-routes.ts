// ANY /run/:name and /run/:name/*: the invoke path. CORS preflights are
// answered here without a call; every other request passes checkInvoke
// (invoke-check.ts), then the Invoker runs the call and its answer is sent:
// JSON for json mode, the function's own response for HTTP functions.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LaminaError, isLaminaError } from '../errors.js';
import { newRequestId } from '../util/request-id.js';
import { buildEvent } from '../http/event.js';
import { acceptEvent, wantsAsync } from '../triggers/accept.js';
import type { FunctionVersion } from '../registry/types.js';
import type { GatewayDeps } from './app.js';
import { sendError } from './app.js';
import { corsHeaders, isPreflight, preflightHeaders } from './cors.js';
import { sendHttpResponse } from './http-answer.js';
import { Refusal, checkInvoke } from './invoke-check.js';
import { splitQualified } from '../versions/store.js';
import type { InvokeOptions } from '../worker/invoke-options.js';
import { databaseUnavailableError } from '../store/unavailable.js';

type RunRequest = FastifyRequest<{ Params: { name: string } }>;

/** Error bodies: the stack only for a caller holding the admin token (the record's logs always keep it). */
function errorFor(type: LaminaError['type'], message: string, stack: string | undefined, admin: boolean): LaminaError {
  return new LaminaError(type, message, admin && stack ? { stack } : {});
}

export function registerInvokeRoutes(app: FastifyInstance, deps: GatewayDeps): void {
  const handler = async (req: RunRequest, reply: FastifyReply) => {
    const requestId = newRequestId();
    (req as RunRequest & { laminaRequestId?: string }).laminaRequestId = requestId;
    // `name:3` runs version 3, `name:alias` the alias's version (or its canary's).
    const { name, qualifier } = splitQualified(req.params.name);
    let pinned: { fv: FunctionVersion; opts: InvokeOptions } | undefined;
    if (qualifier !== undefined) {
      const current = deps.registry.current(name);
      try {
        if (!current || !deps.versions) throw new LaminaError('FunctionNotFound', `function "${req.params.name}" does not exist`);
        const { version } = await deps.versions.resolve(name, qualifier);
        const fv = version === current.version ? current : await deps.registry.getVersion(name, version);
        if (!fv) throw new LaminaError('FunctionNotFound', `function "${name}" has no version ${version}`);
        pinned = { fv, opts: { version } };
      } catch (err) {
        deps.metrics.rejected(name, 'FunctionNotFound');
        const message = isLaminaError(err) ? err.message : `function "${req.params.name}" does not exist`;
        return sendError(reply, new LaminaError('FunctionNotFound', message), requestId);
      }
    }
    const cors = (pinned?.fv ?? deps.registry.current(name))?.manifest.http.cors;
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined;
    if (cors && isPreflight(req.method, req.headers)) {
      const h = preflightHeaders(cors, origin!, String(req.headers['access-control-request-method']), req.headers['access-control-request-headers'] as string | undefined);
      reply.header('x-lamina-request-id', requestId);
      return reply.code(204).headers(h ?? { vary: 'Origin' }).send();
    }
    reply.headers(corsHeaders(cors, origin));

    let checked: Awaited<ReturnType<typeof checkInvoke>>;
    try {
      checked = await checkInvoke(deps, req, name, pinned?.fv);
    } catch (err) {
      const le = isLaminaError(err) ? err : (databaseUnavailableError(err) ?? new LaminaError('InternalError', (err as Error).message));
      if (le.type === 'InternalError') deps.log.error({ err }, 'invoke check failed');
      deps.metrics.rejected(name, le.type);
      if (err instanceof Refusal) reply.headers(err.headers);
      return sendError(reply, le, requestId);
    }
    if (deps.asyncQueue && wantsAsync(req.headers)) {
      // The queue keeps what the function will get: the JSON event, or for the other modes the
      // function-URL 2.0 event of this request (an async call has no caller to stream a body to).
      const mode = checked.fv.manifest.http.event ?? 'json';
      if (mode === 'json' && checked.http.jsonError) {
        deps.metrics.rejected(name, 'BadRequest');
        return sendError(reply, new LaminaError('BadRequest', checked.http.jsonError), requestId);
      }
      const event = mode === 'json' ? checked.event : buildEvent(checked.http, name, requestId);
      return acceptEvent(deps.asyncQueue, reply, { function: name, requestId, event, ...pinned?.opts });
    }
    try {
      const { outcome, record, response } = await deps.worker.invoke(name, requestId, checked.event, { http: checked.http, ...pinned?.opts });
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
      // HEAD: Node's HTTP server sends the headers and drops the body.
      if (response) return sendHttpResponse(reply, response);
      if (outcome.ok) return reply.code(200).type('application/json; charset=utf-8').send(JSON.stringify(outcome.value === undefined ? null : outcome.value));
      const e = outcome.error!;
      return sendError(reply, errorFor(e.type, e.message, e.stack, checked.admin), requestId);
    } catch (err) {
      const le = isLaminaError(err) ? err : (databaseUnavailableError(err) ?? new LaminaError('InternalError', (err as Error).message));
      if (le.type === 'InternalError') deps.log.error({ err }, 'invoke failed');
      deps.metrics.rejected(name, le.type);
      const worker = (err as { worker?: string | null }).worker;
      if (worker !== null) reply.header('x-lamina-worker', worker ?? deps.worker.id);
      const stack = le.extra.stack as string | undefined;
      return sendError(reply, stack && !checked.admin ? errorFor(le.type, le.message, undefined, false) : le, requestId);
    }
  };
  app.all<{ Params: { name: string } }>('/run/:name', handler);
  app.all<{ Params: { name: string } }>('/run/:name/*', handler);
}
