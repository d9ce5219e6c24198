// Cluster mode (docs/cluster.md): `lamina gateway`, `lamina worker`, and
// `lamina workers` (membership, load, drain and resume through a gateway).
import path from 'node:path';
import { Option, type Command } from 'commander';
import { baseConfig, defaultDataDir, validateConfig, type ServerConfig } from '../../config.js';
import { startGatewayNode, type GatewayConfig } from '../../cluster/gateway-node.js';
import type { WorkerView } from '../../cluster/membership.js';
import { DEFAULT_EPSILON, ROUTING_POLICIES, isRoutingPolicy } from '../../cluster/ring.js';
import { clusterTlsFromEnv } from '../../cluster/tls.js';
import { startWorkerNode, type WorkerNodeConfig } from '../../cluster/worker-node.js';
import { isPostgresUrl } from '../../store/postgres.js';
import { Client, CliError, type ClientOptions } from '../client.js';
import { int, runUntilSignal } from '../run.js';
import { table } from '../table.js';

function positive(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new CliError(`${name} must be a positive number (got "${v}")`);
    return n;
  };
}

function envNum(key: string, fallback: number): number {
  const raw = process.env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new CliError(`${key} must be a positive number (got "${raw}")`);
  return n;
}

function databaseUrl(flag: string | undefined): string {
  const url = flag || process.env.LAMINA_DATABASE_URL;
  if (!url) throw new CliError('no database: pass --database postgres://USER:PASSWORD@HOST:5432/DB or set LAMINA_DATABASE_URL');
  if (!isPostgresUrl(url)) throw new CliError('--database must be a PostgreSQL URL (postgres://USER:PASSWORD@HOST:5432/DB)');
  return url;
}

/** Runs a node until SIGTERM/SIGINT, then closes it gracefully (a second signal exits at once). */
export function registerGateway(program: Command): void {
  program
    .command('gateway')
    .description('start a cluster gateway: the API front that routes calls to workers (stateless; run several behind a load balancer)')
    .option('--port <n>', 'port to listen on; 0 picks a free one', int('--port'))
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--database <url>', 'PostgreSQL URL shared by the cluster (default: LAMINA_DATABASE_URL)')
    .option('--data-dir <dir>', 'compile scratch space and the token file (default: LAMINA_DATA_DIR or ~/.lamina)')
    .addOption(new Option('--routing <policy>', 'how calls pick a worker (default: LAMINA_ROUTING or bounded)').choices([...ROUTING_POLICIES]))
    .option('--epsilon <e>', 'bounded loads: a worker takes a call only below (1+e) x the average load (default: LAMINA_EPSILON or 1)', positive('--epsilon'))
    .option('--cluster-secret <secret>', 'secret shared with the workers (default: LAMINA_CLUSTER_SECRET, else the admin token)')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (default: LAMINA_CLUSTER_TLS_CERT)')
    .option('--tls-key <file>', 'the PEM key of --tls-cert (default: LAMINA_CLUSTER_TLS_KEY)')
    .option('--tls-ca <file>', 'PEM CA certificates trusted when calling https workers (default: LAMINA_CLUSTER_TLS_CA, else the system\'s)')
    .option('--heartbeat-timeout <ms>', 'a worker silent this long is down (default: LAMINA_HEARTBEAT_TIMEOUT_MS or 3000)', int('--heartbeat-timeout'))
    .option('--id <id>', "this gateway's id (default: gateway-HOST-PID)")
    .action(async (o: Record<string, unknown>) => {
      const base = baseConfig();
      const routing = (o.routing as string | undefined) ?? process.env.LAMINA_ROUTING ?? 'bounded';
      if (!isRoutingPolicy(routing)) throw new CliError(`routing must be one of ${ROUTING_POLICIES.join(', ')} (got "${routing}")`);
      const heartbeatMs = envNum('LAMINA_HEARTBEAT_MS', 1000);
      const config: GatewayConfig = {
        port: (o.port as number | undefined) ?? 5000,
        host: (o.host as string | undefined) ?? '127.0.0.1',
        dataDir: (o.dataDir as string | undefined) ?? defaultDataDir(),
        databaseUrl: databaseUrl(o.database as string | undefined),
        id: o.id as string | undefined,
        token: (program.opts() as { token?: string }).token || base.token,
        clusterSecret: (o.clusterSecret as string | undefined) || process.env.LAMINA_CLUSTER_SECRET || undefined,
        tls: clusterTlsFromEnv({ cert: o.tlsCert as string | undefined, key: o.tlsKey as string | undefined, ca: o.tlsCa as string | undefined }),
        routing,
        epsilon: (o.epsilon as number | undefined) ?? envNum('LAMINA_EPSILON', DEFAULT_EPSILON),
        vnodes: envNum('LAMINA_VNODES', 160),
        heartbeatMs,
        heartbeatTimeoutMs: (o.heartbeatTimeout as number | undefined) ?? envNum('LAMINA_HEARTBEAT_TIMEOUT_MS', 3 * heartbeatMs),
        acceptTimeoutMs: envNum('LAMINA_ACCEPT_TIMEOUT_MS', 30_000),
        connectTimeoutMs: envNum('LAMINA_CONNECT_TIMEOUT_MS', 2000),
        refreshMs: envNum('LAMINA_REFRESH_MS', 10_000),
        payloadLimitBytes: base.payloadLimitBytes,
        deployLimitBytes: base.deployLimitBytes,
        billingGranularityMs: base.billingGranularityMs,
        prices: base.prices,
      };
      if (!Number.isInteger(config.port) || config.port > 65535) throw new CliError(`port must be an integer from 0 to 65535 (got ${config.port})`);
      const gw = await startGatewayNode(config).catch((err: Error) => {
        throw new CliError(err.message);
      });
      console.log(`Lamina gateway listening on ${gw.url}`);
      console.log(`  id:             ${gw.id}`);
      console.log(`  routing:        ${config.routing}${config.routing === 'bounded' ? ` (epsilon ${config.epsilon})` : ''}`);
      console.log(`  admin token:    ${gw.tokenFile ? `in ${gw.tokenFile}` : 'from LAMINA_TOKEN/--token'}`);
      console.log(`  cluster secret: ${gw.secretSource}`);
      runUntilSignal('gateway', gw.close, 'finishing calls in flight');
    });
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('start a cluster worker: runs the calls a gateway sends it')
    .option('--gateway <url>', 'a gateway (or the load balancer in front of them) to register with (default: LAMINA_GATEWAY_URL)')
    .option('--port <n>', 'port for the internal API; 0 picks a free one (default 5100)', int('--port'))
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--advertise <url>', 'URL gateways use to reach this worker (default: http://HOST:PORT)')
    .option('--id <name>', "this worker's id, stable across restarts (default: LAMINA_WORKER_ID or the host name)")
    .option('--data-dir <dir>', 'code cache and scratch space (default: LAMINA_DATA_DIR/worker-ID or ~/.lamina/worker-ID)')
    .option('--database <url>', 'PostgreSQL URL shared by the cluster (default: LAMINA_DATABASE_URL)')
    .option('--cluster-secret <secret>', 'secret shared with the gateways (default: LAMINA_CLUSTER_SECRET, else LAMINA_TOKEN/--token)')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (default: LAMINA_CLUSTER_TLS_CERT)')
    .option('--tls-key <file>', 'the PEM key of --tls-cert (default: LAMINA_CLUSTER_TLS_KEY)')
    .option('--tls-ca <file>', 'PEM CA certificates trusted when calling https gateways (default: LAMINA_CLUSTER_TLS_CA, else the system\'s)')
    .option('--sandbox <tier>', 'sandbox tier: auto, container, process or isolate')
    .option('--pool-size <n>', 'pre-started runtimes kept per shape', int('--pool-size'))
    .option('--keep-alive <ms>', 'idle time before an instance is stopped', int('--keep-alive'))
    .option('--max-queue <n>', 'calls that may wait per function before 429', int('--max-queue'))
    .option('--billing-granularity <ms>', 'billing rounds durations up to this (default 100)', int('--billing-granularity'))
    .option('--memory-budget <mb>', 'memory all instances may reserve (default: 75% of RAM)', int('--memory-budget'))
    .option('--heartbeat <ms>', 'heartbeat period (default: LAMINA_HEARTBEAT_MS or 1000)', int('--heartbeat'))
    .action(async (o: Record<string, unknown>) => {
      const base: ServerConfig = baseConfig();
      const gatewayUrl = (o.gateway as string | undefined) || process.env.LAMINA_GATEWAY_URL;
      if (!gatewayUrl) throw new CliError('no gateway: pass --gateway URL or set LAMINA_GATEWAY_URL');
      try {
        new URL(gatewayUrl);
      } catch {
        throw new CliError(`--gateway "${gatewayUrl}" is not a URL`);
      }
      if (o.advertise) {
        try {
          new URL(o.advertise as string);
        } catch {
          throw new CliError(`--advertise "${o.advertise as string}" is not a URL`);
        }
      }
      const secret = (o.clusterSecret as string | undefined) || process.env.LAMINA_CLUSTER_SECRET || (program.opts() as { token?: string }).token || process.env.LAMINA_TOKEN;
      if (!secret) throw new CliError('no cluster secret: set LAMINA_CLUSTER_SECRET (the same on gateways and workers) or pass --cluster-secret');
      const id = (o.id as string | undefined) || base.workerId;
      if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(id)) throw new CliError(`--id "${id}" must be letters, digits, . _ : - (up to 128)`);
      const config: WorkerNodeConfig = {
        ...base,
        port: 5100,
        workerId: id,
        dataDir: path.join(defaultDataDir(), `worker-${id}`),
        gatewayUrl,
        databaseUrl: databaseUrl(o.database as string | undefined),
        advertiseUrl: o.advertise as string | undefined,
        clusterSecret: secret,
        tls: clusterTlsFromEnv({ cert: o.tlsCert as string | undefined, key: o.tlsKey as string | undefined, ca: o.tlsCa as string | undefined }),
        heartbeatMs: (o.heartbeat as number | undefined) ?? envNum('LAMINA_HEARTBEAT_MS', 1000),
        refreshMs: envNum('LAMINA_REFRESH_MS', 10_000),
      };
      if (o.port !== undefined) config.port = o.port as number;
      if (o.host) config.host = o.host as string;
      if (o.dataDir) config.dataDir = o.dataDir as string;
      if (o.sandbox) config.sandbox = o.sandbox as ServerConfig['sandbox'];
      if (o.poolSize !== undefined) config.poolSize = o.poolSize as number;
      if (o.keepAlive !== undefined) config.keepAliveMs = o.keepAlive as number;
      if (o.maxQueue !== undefined) config.maxQueue = o.maxQueue as number;
      if (o.billingGranularity !== undefined) config.billingGranularityMs = o.billingGranularity as number;
      if (o.memoryBudget !== undefined) config.memoryBudgetMb = o.memoryBudget as number;
      try {
        validateConfig(config);
      } catch (err) {
        throw new CliError((err as Error).message);
      }
      const w = await startWorkerNode(config).catch((err: Error) => {
        throw new CliError(err.message);
      });
      console.log(`Lamina worker listening on ${w.url}`);
      console.log(`  id:           ${w.id}`);
      console.log(`  gateway:      ${gatewayUrl}`);
      console.log(`  sandbox tier: ${w.tier} (${w.tierReason})`);
      console.log(`  data dir:     ${config.dataDir}`);
      runUntilSignal('worker', w.close, 'deregistering and finishing calls in flight');
    });
}

interface WorkersAnswer {
  gateway: string;
  routing: { policy: string; epsilon: number };
  workers: WorkerView[];
}

function ago(ms: number): string {
  return ms < 1000 ? `${ms} ms ago` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s ago` : `${Math.round(ms / 60_000)} min ago`;
}

function warmList(names: string[]): string {
  if (names.length === 0) return '-';
  const shown = names.slice(0, 5).join(',');
  return names.length > 5 ? `${shown},+${names.length - 5}` : shown;
}

export function registerWorkers(program: Command): void {
  const client = () => new Client(program.opts() as ClientOptions);
  const workers = program.command('workers').description("a cluster's workers: state, load and warm functions; drain and resume");

  workers
    .command('ls', { isDefault: true })
    .description('list the workers with their load and warm functions')
    .option('--json', 'print the gateway answer as JSON')
    .action(async (o: { json?: boolean }) => {
      const a = await client().admin<WorkersAnswer>('GET', '/api/v1/workers');
      if (o.json) return console.log(JSON.stringify(a, null, 2));
      if (a.workers.length === 0) return console.log(`no workers have joined (gateway ${a.gateway})`);
      console.log(
        table(
          ['ID', 'STATE', 'URL', 'IN FLIGHT', 'INSTANCES', 'WARM', 'WARM FUNCTIONS', 'HEARTBEAT'],
          a.workers.map((w) => [
            w.id,
            w.reason ? `${w.state} (${w.reason})` : w.state,
            w.url,
            w.inflight.worker ?? 0,
            w.instances,
            w.warm.length,
            warmList(w.warm),
            ago(w.lastHeartbeatMsAgo),
          ]),
        ),
      );
      console.log(`\nrouting: ${a.routing.policy}${a.routing.policy === 'bounded' ? ` (epsilon ${a.routing.epsilon})` : ''}; seen from ${a.gateway}`);
    });

  workers
    .command('drain')
    .argument('<id>', 'worker id')
    .option('--wait', 'wait until its calls in flight are done')
    .option('--timeout <s>', 'with --wait: give up after this many seconds', '300')
    .description('stop routing new calls to a worker; calls in flight finish')
    .action(async (id: string, o: { wait?: boolean; timeout: string }) => {
      const c = client();
      await c.admin('POST', `/api/v1/workers/${encodeURIComponent(id)}/drain`);
      console.log(`draining ${id}: no new calls go to it`);
      if (!o.wait) return;
      const deadline = Date.now() + Number(o.timeout) * 1000;
      for (;;) {
        const a = await c.admin<WorkersAnswer>('GET', '/api/v1/workers');
        const w = a.workers.find((x) => x.id === id);
        if (!w || w.state === 'left' || w.state === 'down') return console.log(`${id} is ${w?.state ?? 'gone'}`);
        const busy = (w.inflight.worker ?? 0) + w.inflight.gateway;
        if (busy === 0) return console.log(`${id} drained: no calls in flight; stop it now (SIGTERM) or undo with \`lamina workers resume ${id}\``);
        if (Date.now() > deadline) throw new CliError(`${id} still has ${busy} calls in flight after ${o.timeout} s`);
        await new Promise((r) => setTimeout(r, 500));
      }
    });

  workers
    .command('resume')
    .argument('<id>', 'worker id')
    .description('route calls to a drained worker again')
    .action(async (id: string) => {
      await client().admin('POST', `/api/v1/workers/${encodeURIComponent(id)}/resume`);
      console.log(`${id} takes calls again`);
    });
}
