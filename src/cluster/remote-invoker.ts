// The gateway's Invoker in cluster mode: picks a worker for each call (the
// routing policy over the live workers) and forwards the call over HTTP
// keep-alive (an undici Pool per worker).
//
// Failure handling rests on the worker's two-step answer (protocol.ts): its
// answer headers come before it starts the call.
//   - No headers (connection refused, reset, timed out, worker refused while
//     stopping): the call never started. It goes to the next worker; the
//     worker is routed around until it answers a probe again.
//   - Headers, then the connection is lost (or the worker is declared down):
//     the call may have run. 502 WorkerCrashed, never retried.
//   - No worker left to try: 503 ServiceUnavailable at once, with the reason.
import { request } from 'undici';
import { ERROR_STATUS, LaminaError, type ErrorType } from '../errors.js';
import type { Invoker } from '../gateway/app.js';
import type { Registry } from '../registry/registry.js';
import type { FunctionVersion } from '../registry/types.js';
import type { InvokeOptions } from '../worker/invoke-options.js';
import type { CallResult, InstanceView, WorkerStats } from '../worker/worker.js';
import { WorkerLostError, type Member, type Membership } from './membership.js';
import { ACCEPTED_HEADER, CALL_CONTENT_TYPE, INTERNAL_PREFIX, PINNED_HEADER, REFUSED_HEADER, TRIGGER_HEADER, encodeCall, type InvokeEnvelope } from './protocol.js';

export interface RemoteInvokerOptions {
  secret: string;
  /** How long a worker may take to accept a call (fetching code, catching up on a deploy). */
  acceptTimeoutMs: number;
  log: { warn(msg: string): void; error(msg: string): void };
}

/** Errors that prove the request never reached the worker process. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_HEADERS_TIMEOUT']);

type Payload = { type: string; data: string | Buffer };
type Attempt = { result: CallResult } | { retry: 'same' | 'next'; reason: string };

function withWorker<E extends Error>(err: E, worker: string | null): E {
  Object.defineProperty(err, 'worker', { value: worker, enumerable: false, configurable: true });
  return err;
}

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code ?? e?.cause?.code;
}

function describe(err: unknown): string {
  const code = errorCode(err);
  const msg = (err as Error)?.message ?? String(err);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

function toLamina(e: { type?: string; message?: string; extra?: Record<string, unknown> } | undefined, fallback: string): LaminaError {
  const type = e?.type && e.type in ERROR_STATUS ? (e.type as ErrorType) : 'InternalError';
  return new LaminaError(type, e?.message ?? fallback, e?.extra ?? {});
}

export class RemoteInvoker implements Invoker {
  constructor(
    readonly id: string,
    private readonly registry: Registry,
    private readonly members: Membership,
    private readonly opts: RemoteInvokerOptions,
  ) {}

  async invoke(name: string, requestId: string, event: unknown, opts?: InvokeOptions): Promise<CallResult> {
    const fv = this.registry.current(name);
    if (!fv) throw withWorker(new LaminaError('FunctionNotFound', `function "${name}" does not exist`), null);
    const extra: Record<string, string> = {
      // The worker catches up with the current version the gateway knows, whichever version it runs.
      'x-lamina-version': String(fv.version),
      // A call pinned to a stored version (name:3, an alias; the route checked it exists) names it to the
      // worker, which runs that one (or answers 404 if it is gone).
      ...(opts?.version !== undefined && opts.version !== fv.version ? { [PINNED_HEADER]: String(opts.version) } : {}),
      ...(opts?.trigger && opts.trigger !== 'http' ? { [TRIGGER_HEADER]: opts.trigger } : {}),
    };
    // With the raw request, the worker gets it byte for byte (protocol.ts); else the event as JSON.
    const body: Payload = opts?.http ? { type: CALL_CONTENT_TYPE, data: encodeCall(opts.http) } : { type: 'application/json', data: JSON.stringify(event === undefined ? {} : event) };
    const tried = new Set<string>();
    const failures: string[] = [];
    for (;;) {
      const m = this.members.choose(name, tried);
      if (!m) throw this.unavailable(failures);
      tried.add(m.id);
      let a = await this.send(m, fv, requestId, body, extra);
      // A reset on a reused keep-alive connection is usually a race with the worker closing it: once more, fresh.
      if ('retry' in a && a.retry === 'same') a = await this.send(m, fv, requestId, body, extra);
      if ('result' in a) return a.result;
      failures.push(`${m.id} (${a.reason})`);
      if (!a.reason.startsWith('refused:')) this.members.markUnreachable(m, a.reason);
    }
  }

  private async send(m: Member, fv: FunctionVersion, requestId: string, body: Payload, extra: Record<string, string>): Promise<Attempt> {
    const ac = new AbortController();
    m.inflight++;
    m.calls.add(ac);
    try {
      let res: Awaited<ReturnType<typeof request>>;
      try {
        res = await request(`${m.origin}${INTERNAL_PREFIX}/invoke/${encodeURIComponent(fv.name)}`, {
          dispatcher: m.pool,
          method: 'POST',
          headers: {
            authorization: `Bearer ${this.opts.secret}`,
            'content-type': body.type,
            'x-lamina-request-id': requestId,
            ...extra,
          },
          body: body.data,
          signal: ac.signal,
          headersTimeout: this.opts.acceptTimeoutMs,
          bodyTimeout: 0,
        });
      } catch (err) {
        if (ac.signal.aborted) return { retry: 'next', reason: (ac.signal.reason as Error)?.message ?? 'aborted' };
        const code = errorCode(err);
        return { retry: code && UNREACHABLE_CODES.has(code) ? 'next' : 'same', reason: describe(err) };
      }

      if (res.statusCode === 200 && res.headers[ACCEPTED_HEADER]) {
        // From here on the call has started on the worker: never retried.
        let text: string;
        try {
          text = await res.body.text();
        } catch (err) {
          const why = ac.signal.aborted && ac.signal.reason instanceof WorkerLostError ? ac.signal.reason.message : `the connection to it was lost (${describe(err)})`;
          throw withWorker(
            new LaminaError('WorkerCrashed', `worker "${m.id}" died while running the call: ${why}; the call may or may not have completed`),
            m.id,
          );
        }
        m.dirty = true;
        m.lastBeat = Math.max(m.lastBeat, Date.now()); // it answered: alive, whatever its heartbeats say
        let env: InvokeEnvelope;
        try {
          env = JSON.parse(text) as InvokeEnvelope;
        } catch {
          throw withWorker(new LaminaError('InternalError', `worker "${m.id}" sent an unreadable answer`), m.id);
        }
        if ('result' in env) return { result: env.result };
        throw withWorker(toLamina(env.error, `worker "${m.id}" failed the call`), m.id);
      }

      const text = await res.body.text().catch(() => '');
      if (res.statusCode === 503 && res.headers[REFUSED_HEADER]) {
        const why = String(res.headers[REFUSED_HEADER]);
        if (why === 'stopping') this.members.markLeaving(m);
        return { retry: 'next', reason: `refused: ${why}` };
      }
      if (res.statusCode === 401) {
        this.opts.log.error(`worker ${m.id} refused this gateway's cluster secret: LAMINA_CLUSTER_SECRET must be the same on every gateway and worker`);
        return { retry: 'next', reason: 'refused the cluster secret' };
      }
      let parsed: { error?: { type?: string; message?: string } } | undefined;
      try {
        parsed = JSON.parse(text) as typeof parsed;
      } catch {
        parsed = undefined;
      }
      throw withWorker(toLamina(parsed?.error, `worker "${m.id}" answered HTTP ${res.statusCode}`), m.id);
    } finally {
      m.inflight--;
      m.calls.delete(ac);
    }
  }

  private unavailable(failures: string[]): LaminaError {
    const all = this.members.all();
    let why: string;
    if (failures.length) why = `no worker could take the call: ${failures.join('; ')}`;
    else if (all.length === 0) why = 'no worker has joined this cluster (start one: lamina worker --gateway URL ...)';
    else
      why = `no worker is up: ${all
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .map((m) => {
          const h = this.members.health(m);
          return `${m.id} ${h.state}${h.reason ? ` (${h.reason})` : ''}`;
        })
        .join(', ')}`;
    return withWorker(new LaminaError('ServiceUnavailable', why), null);
  }

  stats(): WorkerStats {
    return this.members.mergedStats(this.id);
  }

  /** A function's live instances on every worker that answers within a second (ids carry the worker: `w1/i-...`). */
  async instances(name: string): Promise<InstanceView[]> {
    const live = this.members.all().filter((m) => m.state !== 'left' && !m.down && !m.unreachable);
    const lists = await Promise.all(
      live.map(async (m) => {
        try {
          const res = await request(`${m.origin}${INTERNAL_PREFIX}/instances/${encodeURIComponent(name)}`, {
            dispatcher: m.pool,
            headers: { authorization: `Bearer ${this.opts.secret}` },
            headersTimeout: 1000,
            bodyTimeout: 1000,
          });
          const body = (await res.body.json()) as { instances?: InstanceView[] };
          return (body.instances ?? []).map((i) => ({ ...i, id: `${m.id}/${i.id}` }));
        } catch {
          return [];
        }
      }),
    );
    return lists.flat();
  }
}
