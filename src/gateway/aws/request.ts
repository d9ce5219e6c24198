// Per-request helpers of the AWS routes: who signed, for which region, and the
// JSON body and fields checked with AWS's messages.
import type { FastifyRequest } from 'fastify';
import { AwsError, accessDenied, invalidParameter } from './errors.js';
import type { Principal } from './sigv4.js';

export interface AwsContext {
  requestId: string;
  principal: Principal;
  region: string;
}

export type AwsRequest = FastifyRequest & { aws?: AwsContext };

export function ctx(req: FastifyRequest): AwsContext {
  const c = (req as AwsRequest).aws;
  if (!c) throw new AwsError('ServiceException', 500, 'request context missing');
  return c;
}

/** Everything but Invoke needs the admin credential. */
export function requireAdmin(req: FastifyRequest): AwsContext {
  const c = ctx(req);
  if (c.principal.kind !== 'admin') throw accessDenied(`the access key ${c.principal.id} is an invoke key: it may only call Invoke`);
  return c;
}

export function jsonBody(req: FastifyRequest): Record<string, unknown> {
  const body = req.body;
  if (!Buffer.isBuffer(body) || body.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new AwsError('InvalidRequestContentException', 400, `Could not parse request body into json: ${(err as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new AwsError('InvalidRequestContentException', 400, 'the request body must be a JSON object');
  return v as Record<string, unknown>;
}

export function optString(body: Record<string, unknown>, field: string): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalidParameter(`${field} must be a string`);
  return v;
}

export function optInt(body: Record<string, unknown>, field: string, min: number, max: number): number | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalidParameter(`${field} must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
  return v;
}

export function optEnv(body: Record<string, unknown>): Record<string, string> | undefined {
  const env = body.Environment;
  if (env === undefined || env === null) return undefined;
  const vars = (env as { Variables?: unknown }).Variables;
  if (typeof env !== 'object' || (vars !== undefined && (typeof vars !== 'object' || vars === null || Array.isArray(vars)))) throw invalidParameter('Environment must be {"Variables": {"NAME": "value"}}');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((vars ?? {}) as Record<string, unknown>)) {
    if (typeof v !== 'string') throw invalidParameter(`Environment.Variables.${k} must be a string`);
    out[k] = v;
  }
  return out;
}

/** A FunctionVersion field: `$LATEST` (0) or a version number. */
export function parseVersionField(raw: unknown, field: string): number {
  if (raw === '$LATEST') return 0;
  if (typeof raw === 'string' && /^\d+$/.test(raw) && Number(raw) > 0) return Number(raw);
  throw invalidParameter(`${field} must be $LATEST or a version number (got ${JSON.stringify(raw)})`);
}
