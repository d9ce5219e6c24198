// Invoke: POST /functions/:fn/invocations. The body is the raw JSON event;
// RequestResponse answers the handler's JSON (a handler error is 200 with
// X-Amz-Function-Error), Event answers 202 and runs it later, DryRun 204.
// LogType Tail returns the last 4 KB of the call's log, REPORT line included.
import type { FastifyInstance } from 'fastify';
import type { InvokeOutcome } from '../../sandbox/types.js';
import { AwsError, accessDenied, invalidParameter, notFound, toAwsError } from './errors.js';
import { ctx } from './request.js';
import { parseFunctionRef } from './shapes.js';
import type { AwsDeps } from './types.js';
import { parseJsonBody } from '../../http/json-body.js';

/** Bytes of log that LogType Tail returns. */
export const TAIL_BYTES = 4096;

export function tailOf(logs: string): string {
  const b = Buffer.from(logs, 'utf8');
  return b.subarray(Math.max(0, b.length - TAIL_BYTES)).toString('base64');
}

function parseEvent(body: unknown): unknown {
  const parsed = parseJsonBody(Buffer.isBuffer(body) ? body : undefined);
  // Same rules as /run (an empty body is {}, events nest at most MAX_EVENT_DEPTH levels).
  if ('jsonError' in parsed) throw new AwsError('InvalidRequestContentException', 400, `Could not parse request body into json: ${parsed.jsonError}`);
  return parsed.event;
}

/** errorType from the first line of a stack ("TypeError: ..."), as Lambda names it. */
function errorTypeOf(e: NonNullable<InvokeOutcome['error']>): string {
  if (e.type === 'Timeout') return 'Sandbox.Timedout';
  if (e.type === 'SandboxCrashed' || e.type === 'MemoryLimitExceeded') return 'Runtime.ExitError';
  const first = e.stack?.split('\n').find((l) => l.trim() !== '') ?? '';
  const js = /^([A-Za-z_$][\w$.]*)(?::|$)/.exec(first);
  if (js && js[1] !== 'Traceback') return js[1]!;
  // Python: the last line of the traceback names the exception.
  const last = e.stack?.trim().split('\n').at(-1) ?? '';
  const py = /^([A-Za-z_][\w.]*)(?::|$)/.exec(last);
  return py ? py[1]! : 'Error';
}

export function registerInvokeRoute(app: FastifyInstance, deps: AwsDeps): void {
  app.post<{ Params: { fn: string }; Querystring: { Qualifier?: string } }>('/functions/:fn/invocations', async (req, reply) => {
    const c = ctx(req);
    const { name, qualifier: inName } = parseFunctionRef(req.params.fn);
    if (inName !== undefined && req.query.Qualifier !== undefined && inName !== req.query.Qualifier) throw invalidParameter('the qualifier in the function name and the Qualifier parameter differ');
    const qualifier = inName ?? req.query.Qualifier;
    if (c.principal.kind === 'key' && !c.principal.functions.includes('*') && !c.principal.functions.includes(name)) {
      throw accessDenied(`the access key ${c.principal.id} may not invoke ${name}`);
    }
    const type = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    if (!['RequestResponse', 'Event', 'DryRun'].includes(type)) throw invalidParameter(`X-Amz-Invocation-Type must be RequestResponse, Event or DryRun (got ${type})`);
    const logType = String(req.headers['x-amz-log-type'] ?? 'None');
    if (logType !== 'None' && logType !== 'Tail') throw invalidParameter(`X-Amz-Log-Type must be None or Tail (got ${logType})`);

    if (!deps.registry.current(name)) throw notFound(`Function not found: ${name}`);
    const { version } = await deps.versions.resolve(name, qualifier);
    const event = parseEvent(req.body);
    // Unqualified ($LATEST) calls run whichever version is current when they run; a qualifier pins one.
    const opts = { ...(qualifier === undefined || qualifier === '$LATEST' ? {} : { version }), trigger: 'aws' as const };
    const executed = qualifier === undefined || qualifier === '$LATEST' ? '$LATEST' : String(version);
    reply.header('x-amzn-requestid', c.requestId);

    if (type === 'DryRun') return reply.code(204).send();
    if (type === 'Event') {
      if (deps.enqueue) await deps.enqueue({ name, requestId: c.requestId, event, opts });
      else {
        // No durable queue on this node: the call runs in the background after the 202.
        deps.worker.invoke(name, c.requestId, event, opts).then(
          ({ record }) => deps.metrics.observe(record),
          (err: unknown) => deps.log.error({ err, requestId: c.requestId }, 'async invoke failed'),
        );
      }
      return reply.code(202).send();
    }

    let result;
    try {
      result = await deps.worker.invoke(name, c.requestId, event, opts);
    } catch (err) {
      const e = toAwsError(err);
      deps.metrics.rejected(name, e.code);
      throw e;
    }
    const { outcome, record } = result;
    deps.metrics.observe(record);
    reply.header('x-amz-executed-version', executed);
    if (logType === 'Tail') reply.header('x-amz-log-result', tailOf(record.logs));
    if (outcome.ok) return reply.code(200).type('application/json').send(JSON.stringify(outcome.value === undefined ? null : outcome.value));
    const e = outcome.error!;
    // The stack goes to the admin; an invoke key's holder sees the type and message.
    const stackTrace = c.principal.kind === 'admin' && e.stack ? e.stack.split('\n').slice(1).map((l) => l.trim()).filter(Boolean) : [];
    reply.header('x-amz-function-error', 'Unhandled');
    return reply.code(200).type('application/json').send(JSON.stringify({ errorMessage: e.message, errorType: errorTypeOf(e), stackTrace }));
  });
}
