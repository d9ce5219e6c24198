// The HTTP front of one node: invoke routes, the admin API, health and metrics.
// Every error leaves as the contract's JSON shape with its status code.
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { registerConsoleApi, registerConsolePages } from '../console/routes.js';
import { newRequestId } from '../util/request-id.js';
import { LaminaError, isLaminaError } from '../errors.js';
import type { KeyStore } from '../keys/store.js';
import type { LiveHub } from '../live/hub.js';
import { registerEventStream } from '../live/sse.js';
import type { InvocationStore } from '../metering/store.js';
import type { Registry } from '../registry/registry.js';
import { databaseUnavailableError } from '../store/unavailable.js';
import type { Manifest } from '../registry/types.js';
import type { AsyncQueue } from '../triggers/queue.js';
import type { InvokeOptions } from '../worker/invoke-options.js';
import type { CallResult, InstanceView, WorkerStats } from '../worker/worker.js';
import type { VersionStore } from '../versions/store.js';
import { registerAdminRoutes } from './admin-routes.js';
import { AWS_PREFIX, awsLambdaApi } from './aws/plugin.js';
import type { AwsDeps } from './aws/types.js';
import { registerInvokeRoutes } from './invoke-routes.js';
import type { Metrics } from './metrics.js';

/**
 * What runs calls for the gateway: the node's own Worker (`lamina up`), or in
 * cluster mode a router that forwards each call to a remote worker
 * (src/cluster/remote-invoker.ts). An error it throws may carry `worker`:
 * the id of the worker that refused or lost the call (sent as
 * x-lamina-worker), or null when no worker was involved (no header).
 */
export interface Invoker {
  readonly id: string;
  /** `opts` (src/worker/invoke-options.ts) is optional: 3-argument calls run the current version. */
  invoke(name: string, requestId: string, event: unknown, opts?: InvokeOptions): Promise<CallResult>;
  /** Instances and memory, for /metrics and the admin API (in a cluster: merged from the workers' last heartbeats). */
  stats(): WorkerStats;
  /** Live instances of one function with their sandboxes' readings (memory, CPU, paused), where the invoker holds them. */
  instances?(name: string): Promise<InstanceView[]>;
  /** Where the invoker starts an instance of a new version at its deploy: resolves once it is ready or gave up (bounded). */
  whenStartedAhead?(name: string, version: number): Promise<void>;
}

export interface GatewayDeps {
  registry: Registry;
  worker: Invoker;
  invocations: InvocationStore;
  /** Invoke keys for functions with "auth": "token". */
  keys: KeyStore;
  metrics: Metrics;
  token: string;
  payloadLimitBytes: number;
  deployLimitBytes: number;
  /** Why this node cannot run a manifest, or undefined. */
  checkManifest: (m: Manifest) => string | undefined;
  health: () => Record<string, unknown>;
  log: { error: (obj: unknown, msg?: string) => void };
  /** The durable async queue (src/triggers): `x-lamina-invocation-type: Event` calls, GET /api/v1/queue. */
  asyncQueue?: AsyncQueue;
  /** Serve HTTPS with this certificate (a cluster gateway given --tls-cert/--tls-key). */
  https?: { cert: Buffer; key: Buffer };
  /** The live feed of calls and deploys (GET /api/v1/events); without it the endpoint is absent. */
  live?: LiveHub;
  /** The tier a manifest's sandbox setting resolves to on this node (`auto` -> the strongest available). */
  tierFor?: (m: Pick<Manifest, 'sandbox'>) => string;
  /** Published versions and aliases (name:qualifier calls, the AWS API); without it both are off. */
  versions?: VersionStore;
  /** AWS API: invoke keys usable as SigV4 credentials (wired where keys exist). */
  invokeKeys?: AwsDeps['invokeKeys'];
  /** AWS API: the durable queue for Event calls (wired where the async queue exists). */
  enqueue?: AwsDeps['enqueue'];
}

export function errorBody(err: LaminaError, requestId?: string): string {
  return JSON.stringify({ error: { type: err.type, message: err.message, ...(requestId ? { requestId } : {}), ...err.extra } });
}

export function sendError(reply: FastifyReply, err: LaminaError, requestId?: string): FastifyReply {
  if (requestId) reply.header('x-lamina-request-id', requestId);
  return reply.code(err.status).type('application/json; charset=utf-8').send(errorBody(err, requestId));
}

/** Maps fastify's own errors (body limits, parse failures) and an unavailable database onto the error model. */
function toLaminaError(err: unknown, limit: number): LaminaError {
  if (isLaminaError(err)) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413) return new LaminaError('PayloadTooLarge', `the request body exceeds the limit of ${limit} bytes`);
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return new LaminaError('BadRequest', e.message ?? 'bad request');
  return databaseUnavailableError(err) ?? new LaminaError('InternalError', e.message ?? 'internal error');
}

/** Most bytes read and discarded after a 413 so the client can finish sending; beyond it the connection is closed. */
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;

/** Reads and discards the rest of a request body; false if it was too long or too slow. */
function drained(raw: IncomingMessage): Promise<boolean> {
  if (raw.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    let seen = 0;
    const done = (ok: boolean) => {
      clearTimeout(timer);
      raw.removeListener('data', onData);
      raw.removeListener('end', onEnd);
      resolve(ok);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > MAX_DRAIN_BYTES) done(false);
    };
    const onEnd = () => done(true);
    const timer = setTimeout(() => done(false), 10_000);
    raw.on('data', onData);
    raw.on('end', onEnd);
    raw.resume();
  });
}

export async function buildGateway(deps: GatewayDeps): Promise<FastifyInstance> {
  const app = Fastify({
    ...(deps.https ? { https: deps.https } : {}),
    logger: false,
    bodyLimit: deps.payloadLimitBytes,
    // Requests may carry any body; we read it raw and parse JSON ourselves.
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true },
  });

  // Once closing, every response closes its connection, so keep-alive clients
  // do not hold the shutdown open until their idle timeout.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // A callback hook, not an async one: it runs on every response, and an async hook costs a promise and its turns.
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: Buffer) => void) => done(null, body));

  app.setErrorHandler(async (err, req, reply) => {
    const le = toLaminaError(err, req.url.startsWith('/api/') ? deps.deployLimitBytes : deps.payloadLimitBytes);
    if (le.type === 'PayloadTooLarge' && (await drained(req.raw))) {
      // The body was read to its end, so the connection can stay open and the
      // client, still sending when the limit was hit, reads a clean 413.
      reply.removeHeader('connection');
    }
    if (le.type === 'InternalError') deps.log.error({ err }, 'request failed');
    let requestId = (req as FastifyRequest & { laminaRequestId?: string }).laminaRequestId;
    if (le.type === 'PayloadTooLarge') {
      const m = /^\/run\/([^/?]+)/.exec(req.url);
      if (m) {
        deps.metrics.rejected(decodeURIComponent(m[1]!), 'PayloadTooLarge');
        // The body limit fires before the invoke handler has named the call; every /run answer carries an id.
        requestId ??= newRequestId();
      }
    }
    return sendError(reply, le, requestId);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, new LaminaError('NotFound', `no route for ${req.method} ${req.url.split('?')[0]}`)));

  app.get('/healthz', async (_req, reply) => reply.send({ status: 'ok', ...deps.health() }));
  app.get('/metrics', async (_req, reply) => reply.type(deps.metrics.contentType).send(await deps.metrics.text()));

  registerInvokeRoutes(app, deps);
  await registerConsolePages(app);
  await app.register(
    async (admin) => {
      await registerAdminRoutes(admin, deps);
      registerConsoleApi(admin, deps);
      if (deps.live) registerEventStream(admin, { live: deps.live, registry: deps.registry });
    },
    { prefix: '/api/v1' },
  );
  // Event streams never go idle: end them so closing the server does not wait on them.
  if (deps.live) app.addHook('preClose', async () => deps.live!.close());
  const versions = deps.versions;
  if (versions) await app.register(async (aws) => awsLambdaApi(aws, { ...deps, versions }), { prefix: AWS_PREFIX });
  return app;
}
