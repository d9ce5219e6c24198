// The checks every call to /run/:name passes before anything runs, cheapest
// first: the function exists (404), the method is allowed (405), the caller
// may call it (401, "auth": "token"), the body is JSON for json mode (400;
// deferred, see below). The payload cap (413) is enforced earlier, while the
// body is read. Exported so other entry points (async invocation) refuse
// exactly what a synchronous call refuses.
import type { FastifyRequest } from 'fastify';
import { LaminaError } from '../errors.js';
import type { HttpCall } from '../http/call.js';
import { parseJsonBody } from '../http/json-body.js';
import type { FunctionVersion } from '../registry/types.js';
import { tokenMatches } from './admin-routes.js';
import type { GatewayDeps } from './app.js';

export interface CheckedCall {
  fv: FunctionVersion;
  /** json mode: the parsed body (undefined when it is not JSON: then http.jsonError says why). */
  event: unknown;
  /** The raw request, for the worker. */
  http: HttpCall;
  /** The caller holds the admin token: error answers may carry the stack. */
  admin: boolean;
}

/** A refusal with the headers that go with it (Allow, WWW-Authenticate). */
export class Refusal extends LaminaError {
  constructor(
    type: ConstructorParameters<typeof LaminaError>[0],
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(type, message);
  }
}

function rawHeaders(req: FastifyRequest): [string, string][] {
  const raw = req.raw.rawHeaders;
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return out;
}

function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

/**
 * Checks one call; throws a Refusal (or LaminaError) for the error model.
 * json mode's "not JSON" is not refused here: only the worker knows, once an
 * instance loaded the module, whether it is a fetch handler (which takes any
 * body), so the body's verdict travels in http.jsonError (docs/architecture.md).
 */
export async function checkInvoke(deps: Pick<GatewayDeps, 'registry' | 'token' | 'keys'>, req: FastifyRequest, name: string, pinned?: FunctionVersion): Promise<CheckedCall> {
  // A qualified call (name:3, name:alias) is checked against the version it runs.
  const fv = pinned ?? deps.registry.current(name);
  if (!fv) throw new Refusal('FunctionNotFound', `function "${name}" does not exist`);
  const methods = fv.manifest.http.methods as string[];
  if (!methods.includes(req.method)) {
    throw new Refusal('MethodNotAllowed', `function "${name}" does not accept ${req.method} (allowed: ${methods.join(', ')})`, { allow: methods.join(', ') });
  }
  const authorization = req.headers.authorization;
  const admin = authorization !== undefined && tokenMatches(authorization, deps.token);
  if (fv.manifest.http.auth === 'token' && !admin) {
    const key = bearer(authorization);
    if (!key || !(await deps.keys.allows(key, name))) {
      throw new Refusal('Unauthorized', `function "${name}" needs a key: Authorization: Bearer <invoke key or admin token>${key ? ' (the key given is not valid for it)' : ''}`, {
        'www-authenticate': 'Bearer realm="lamina"',
      });
    }
  }
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  // A credential Lamina consumed (the admin token, an invoke key) never reaches the function's code.
  const consumed = admin || fv.manifest.http.auth === 'token';
  // The header pairs are listed on first read: a json-mode call to an event handler never reads
  // them, and lower-casing every name was a visible share of the gateway's CPU per call.
  let headers: [string, string][] | undefined;
  const http: HttpCall = {
    method: req.method,
    url: req.url,
    get headers() {
      return (headers ??= consumed ? rawHeaders(req).filter(([k]) => k !== 'authorization') : rawHeaders(req));
    },
    set headers(v) {
      headers = v;
    },
    body,
    sourceIp: req.ip ?? '',
    protocol: `HTTP/${req.raw.httpVersion}`,
  };
  let event: unknown;
  if ((fv.manifest.http.event ?? 'json') === 'json') {
    const parsed = parseJsonBody(body);
    if ('event' in parsed) event = parsed.event;
    else http.jsonError = parsed.jsonError;
  }
  return { fv, event, http, admin };
}
