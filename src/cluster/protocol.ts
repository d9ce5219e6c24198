// The internal HTTP API between gateways and workers (docs/cluster.md). Every
// route needs `Authorization: Bearer <cluster secret>`.
//
// Worker side (served by each worker):
//   POST /internal/v1/invoke/:name   headers x-lamina-request-id, x-lamina-version (the current version the
//        gateway knows), optional x-lamina-pinned-version (run that stored version) and x-lamina-trigger
//        (http, event, schedule or aws: recorded with the call); body: the event (JSON), or
//        with content-type application/x-lamina-call the raw HTTP request (encodeCall): one line of JSON
//        {method, url, headers, sourceIp, protocol, jsonError?}, "\n", then the request's body byte for byte
//        A worker that takes the call answers 200 with `x-lamina-accepted: 1` at once, *before* it starts
//        the call, and sends the body (an InvokeEnvelope) when the call ends. So a gateway that saw no
//        answer headers knows the call never started and may send it to another worker; one that saw them
//        and then lost the connection knows the worker died mid-call (502 WorkerCrashed).
//        503 with `x-lamina-refused` means "not taken, try another worker" (the worker is stopping).
//        Other statuses carry {error} and are final (e.g. 404 when the function is gone).
//   POST /internal/v1/flush          writes the worker's buffered invocation records; answers when done
//   GET  /internal/v1/ping           {id, boot}
//   GET  /internal/v1/stats          the worker's WorkerReport
//   GET  /internal/v1/instances/:name  {instances: InstanceView[]} of one function
// Gateway side (served by every gateway; workers call whichever gateway --gateway reaches):
//   POST /internal/v1/workers/register    RegisterRequest -> MembershipAnswer
//   POST /internal/v1/workers/heartbeat   HeartbeatRequest -> MembershipAnswer (404: register again)
//   POST /internal/v1/workers/deregister  {id, boot}
import { createHash, timingSafeEqual } from 'node:crypto';
import type { HttpCall } from '../http/call.js';
import type { CallResult, WorkerStats } from '../worker/worker.js';

export const INTERNAL_PREFIX = '/internal/v1';
export const ACCEPTED_HEADER = 'x-lamina-accepted';
export const REFUSED_HEADER = 'x-lamina-refused';
/** A call pinned to a stored version (name:3, an alias): the worker runs that version, not the current one. */
export const PINNED_HEADER = 'x-lamina-pinned-version';
/** How the call reached the gateway (InvokeOptions.trigger), recorded with it; absent: http. */
export const TRIGGER_HEADER = 'x-lamina-trigger';

/** What a worker can run, sent when it registers. */
export interface WorkerInfo {
  tiers: string[];
  defaultTier: string;
  /** Lamina version of the worker. */
  version: string;
  pid: number;
  host: string;
}

/** A worker's load and warm functions, sent with every heartbeat. */
export interface WorkerReport extends WorkerStats {
  /** Calls this worker is running (from every gateway). */
  inflight: number;
  /** Calls it has taken since it started. */
  served: number;
  /** Whether it is stopping (deregistered, finishing its calls). */
  stopping: boolean;
}

export interface RegisterRequest {
  id: string;
  url: string;
  boot: string;
  info: WorkerInfo;
  stats: WorkerReport;
}

export interface HeartbeatRequest {
  id: string;
  url: string;
  boot: string;
  seq: number;
  stats: WorkerReport;
}

export interface MembershipAnswer {
  state: string;
  heartbeatMs: number;
  /** After this long without a heartbeat, gateways declare the worker down. */
  timeoutMs: number;
  gateway: string;
}

export type InvokeEnvelope = { result: CallResult } | { error: { type: string; message: string; extra?: Record<string, unknown> } };

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time check of `Authorization: Bearer <secret>`. */
export function secretMatches(header: string | undefined, secret: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return !!m && timingSafeEqual(digest(m[1]!.trim()), digest(secret));
}

/** Content type of a forwarded raw HTTP request. */
export const CALL_CONTENT_TYPE = 'application/x-lamina-call';

/** A raw HTTP request as one body: its metadata as a JSON line (JSON text holds no raw newline), then its body's bytes. */
export function encodeCall(call: HttpCall): Buffer {
  const { body, ...meta } = call;
  return Buffer.concat([Buffer.from(JSON.stringify(meta) + '\n'), body]);
}

/** The inverse of encodeCall; throws on a malformed body. */
export function decodeCall(data: Buffer): HttpCall {
  const nl = data.indexOf(10);
  if (nl === -1) throw new Error('no metadata line');
  const meta = JSON.parse(data.subarray(0, nl).toString('utf8')) as Omit<HttpCall, 'body'>;
  if (typeof meta?.method !== 'string' || typeof meta.url !== 'string' || !Array.isArray(meta.headers)) throw new Error('bad metadata');
  for (const h of meta.headers) if (!Array.isArray(h) || typeof h[0] !== 'string' || typeof h[1] !== 'string') throw new Error('bad header');
  return {
    method: meta.method,
    url: meta.url,
    headers: meta.headers,
    body: data.subarray(nl + 1),
    sourceIp: String(meta.sourceIp ?? ''),
    protocol: String(meta.protocol ?? 'HTTP/1.1'),
    ...(typeof meta.jsonError === 'string' ? { jsonError: meta.jsonError } : {}),
  };
}
