// The internal HTTP API between gateways and workers (docs/cluster.md). Every
// route needs `Authorization: Bearer <cluster secret>`.
//
// Worker side (served by each worker):
//   POST /internal/v1/invoke/:name   headers x-lamina-request-id, x-lamina-version; body: the event (JSON)
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
import type { CallResult, WorkerStats } from '../worker/worker.js';

export const INTERNAL_PREFIX = '/internal/v1';
export const ACCEPTED_HEADER = 'x-lamina-accepted';
export const REFUSED_HEADER = 'x-lamina-refused';

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
