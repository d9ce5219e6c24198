// `lamina gateway`: the stateless front of a cluster. It serves the contract's
// API (the same Fastify app as `lamina up`), keeps the registry's in-memory
// map in step with PostgreSQL (notices plus a periodic refresh), compiles
// deploys and publishes their code to the shared store, and forwards each call
// to a worker through the RemoteInvoker. Several gateways may run behind any
// TCP load balancer: all they share is the database.
import { mkdirSync } from 'node:fs';
import pino from 'pino';
import type { Prices } from '../metering/billing.js';
import { KeyStore, pepperFromSecret } from '../keys/store.js';
import { buildGateway } from '../gateway/app.js';
import { loadClusterTls, type ClusterTlsConfig } from './tls.js';
import { LiveHub, feedFromRegistry, publishCalls } from '../live/hub.js';
import { Metrics } from '../gateway/metrics.js';
import { Registry } from '../registry/registry.js';
import type { Manifest } from '../registry/types.js';
import { loadOrCreateToken } from '../server.js';
import { openPostgres, redactUrl } from '../store/postgres.js';
import { codePublisher } from './code.js';
import { registerClusterRoutes } from './gateway-routes.js';
import { ClusterInvocationStore } from './invocations.js';
import { Membership, defaultGatewayId } from './membership.js';
import { AsyncMetrics } from '../triggers/metrics.js';
import { AsyncQueue } from '../triggers/queue.js';
import { ASYNC_CHANNEL, PgListener, REGISTRY_CHANNEL, WORKERS_CHANNEL, notify } from './notify.js';
import { RemoteInvoker } from './remote-invoker.js';
import { VersionStore } from '../versions/store.js';
import type { RoutingPolicy } from './ring.js';

export interface GatewayConfig {
  port: number;
  host: string;
  /** Compile staging and the token file (when LAMINA_TOKEN is unset). */
  dataDir: string;
  databaseUrl: string;
  id: string | undefined;
  token: string | undefined;
  /** Shared with the workers; defaults to the admin token. */
  clusterSecret: string | undefined;
  routing: RoutingPolicy;
  epsilon: number;
  vnodes: number;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  acceptTimeoutMs: number;
  connectTimeoutMs: number;
  /** Full registry refresh period, as a safety net under notices. */
  refreshMs: number;
  payloadLimitBytes: number;
  deployLimitBytes: number;
  billingGranularityMs: number;
  prices: Prices;
  /** TLS with the workers (and on this gateway's port when it has a certificate). */
  tls?: ClusterTlsConfig;
}

export interface RunningGateway {
  url: string;
  id: string;
  tokenFile: string | undefined;
  secretSource: string;
  close(): Promise<void>;
}

export async function startGatewayNode(config: GatewayConfig): Promise<RunningGateway> {
  const log = pino({ level: process.env.LAMINA_LOG_LEVEL ?? 'info', base: undefined }, pino.destination(2));
  const tls = loadClusterTls(config.tls);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const { token, file: tokenFile } = loadOrCreateToken(config.dataDir, config.token);
  const secret = config.clusterSecret || token;
  const secretSource = config.clusterSecret ? 'LAMINA_CLUSTER_SECRET/--cluster-secret' : tokenFile ? `the admin token (${tokenFile})` : 'the admin token (LAMINA_TOKEN/--token)';

  const db = await openPostgres(config.databaseUrl, { applicationName: 'lamina-gateway' });
  const cleanups: (() => Promise<unknown>)[] = [() => db.close()];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const registry = await Registry.open(db, config.dataDir, {
      publishCode: codePublisher(db),
      onChange: (name) => void notify(db, REGISTRY_CHANNEL, name).catch((err) => log.warn(`cannot announce the change of ${name}: ${(err as Error).message}`)),
    });
    const gatewayId = config.id || defaultGatewayId();
    const members = new Membership(db, {
      gatewayId,
      secret,
      heartbeatMs: config.heartbeatMs,
      timeoutMs: config.heartbeatTimeoutMs,
      pollMs: Math.max(50, Math.min(500, Math.floor(config.heartbeatTimeoutMs / 4))),
      policy: config.routing,
      epsilon: config.epsilon,
      vnodes: config.vnodes,
      connectTimeoutMs: config.connectTimeoutMs,
      tlsConnect: tls.connect,
      log: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
    });
    await members.start();
    cleanups.push(() => members.close());

    const listener = new PgListener(
      config.databaseUrl,
      [REGISTRY_CHANNEL, WORKERS_CHANNEL],
      (channel, payload) => {
        if (channel === REGISTRY_CHANNEL) void registry.refresh([payload]).catch((err) => log.warn(`registry refresh of ${payload} failed: ${(err as Error).message}`));
        else void members.poll().catch(() => undefined);
      },
      () => {
        void registry.refresh().catch(() => undefined);
        void members.poll().catch(() => undefined);
      },
      (m) => log.warn(m),
    );
    await listener.start();
    cleanups.push(() => listener.stop());
    const refresher = setInterval(() => void registry.refresh().catch((err) => log.warn(`registry refresh failed: ${(err as Error).message}`)), config.refreshMs);
    refresher.unref();
    cleanups.push(async () => clearInterval(refresher));

    // The live feed (console, `lamina logs -f`): deploys seen by this gateway and the calls it answers.
    const live = new LiveHub();
    feedFromRegistry(live, registry);
    const invoker = new RemoteInvoker(gatewayId, registry, members, {
      secret,
      acceptTimeoutMs: config.acceptTimeoutMs,
      log: { warn: (m) => log.warn(m), error: (m) => log.error(m) },
    });
    const invocations = new ClusterInvocationStore(db, config.prices, config.billingGranularityMs, members, secret, (m) => log.error(m));
    const metrics = new Metrics(() => invoker.stats());
    // Async events go to the shared queue; workers claim them. One notice per burst wakes their dispatchers.
    const asyncQueue = new AsyncQueue(db);
    new AsyncMetrics(metrics.registry, asyncQueue);
    let wakePending = false;
    asyncQueue.on('enqueued', () => {
      if (wakePending) return;
      wakePending = true;
      setTimeout(() => {
        wakePending = false;
        void notify(db, ASYNC_CHANNEL, '*').catch(() => undefined);
      }, 5).unref();
    });
    const checkManifest = (m: Manifest): string | undefined => {
      if (m.sandbox === 'auto') return undefined;
      const tiers = members.liveTiers();
      if (!tiers) return undefined; // no worker yet: cannot tell
      if (!tiers.has(m.sandbox)) return `sandbox tier "${m.sandbox}" is not available on any live worker (they offer: ${[...tiers].join(', ') || 'none'})`;
      return undefined;
    };
    const keys = new KeyStore(db, pepperFromSecret(secret));
    // Published versions and aliases live in the shared database: name:qualifier calls and the AWS API work on every gateway.
    const versions = new VersionStore(db, registry);
    registry.on('removed', (name) => void versions.forget(name).catch((err: Error) => log.warn(`could not drop the aliases of ${name}: ${err.message}`)));
    const app = await buildGateway({
      keys,
      registry,
      worker: publishCalls(invoker, live),
      live,
      invocations,
      metrics,
      versions,
      invokeKeys: (id) => keys.secretFor(id),
      // AWS Invoke with InvocationType Event: the shared durable queue, as for `x-lamina-invocation-type: Event`.
      enqueue: async (c) => void (await asyncQueue.enqueue({ function: c.name, event: c.event, requestId: c.requestId, trigger: 'aws', ...(c.opts?.version !== undefined ? { version: c.opts.version } : {}) })),
      token,
      payloadLimitBytes: config.payloadLimitBytes,
      deployLimitBytes: config.deployLimitBytes,
      checkManifest,
      health: () => ({
        gateway: gatewayId,
        routing: config.routing,
        workers: { up: members.routableCount(), known: members.all().filter((m) => m.state !== 'left').length },
        functions: registry.list().length,
      }),
      log,
      asyncQueue,
      https: tls.server,
    });
    await registerClusterRoutes(app, { members, token, secret, gatewayId });
    cleanups.push(() => app.close());
    await app.listen({ port: config.port, host: config.host });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
    log.info(`gateway ${gatewayId}: database ${redactUrl(config.databaseUrl)}, routing ${config.routing}${config.routing === 'bounded' ? ` (epsilon ${config.epsilon})` : ''}`);
    let closing: Promise<void> | undefined;
    return {
      url: `${tls.server ? 'https' : 'http'}://${host}:${port}`,
      id: gatewayId,
      tokenFile,
      secretSource,
      close: () => (closing ??= cleanup()),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
