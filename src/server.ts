// One node: registry, sandboxes, worker and gateway in one process (`lamina up`).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { ServerConfig } from './config.js';
import { KeyStore, loadOrCreatePepper } from './keys/store.js';
import { buildGateway } from './gateway/app.js';
import { Metrics } from './gateway/metrics.js';
import { LiveHub, feedFromRegistry } from './live/hub.js';
import { attachTerminalLog } from './live/terminal-log.js';
import { InvocationStore } from './metering/store.js';
import { Registry } from './registry/registry.js';
import { SandboxProvider } from './sandbox/provider.js';
import { openDatabase } from './store/db.js';
import { AsyncMetrics } from './triggers/metrics.js';
import { startTriggers } from './triggers/node.js';
import { InvocationPruner, invocationRetentionMs } from './metering/retention.js';
import { AsyncQueue } from './triggers/queue.js';
import { lockDataDir, type DataDirLock } from './util/data-dir-lock.js';
import { VersionStore } from './versions/store.js';
import { Worker, workerOptions } from './worker/worker.js';

export interface RunningServer {
  url: string;
  tokenFile: string | undefined;
  tier: string;
  tierReason: string;
  /** Stops accepting, finishes calls in flight, stops every sandbox. */
  close(): Promise<void>;
}

/** The admin token: LAMINA_TOKEN/--token if given, else DATA_DIR/token (generated once, mode 0600). */
export function loadOrCreateToken(dataDir: string, explicit: string | undefined): { token: string; file: string | undefined } {
  if (explicit) return { token: explicit, file: undefined };
  const file = path.join(dataDir, 'token');
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token) return { token, file };
  }
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, token + '\n', { mode: 0o600 });
  return { token, file };
}

export interface StartOptions {
  /** Print a line per deploy and failed call on stderr (default true; `lamina dev` prints its own). */
  terminalLog?: boolean;
}

export async function startServer(config: ServerConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const log = pino({ level: process.env.LAMINA_LOG_LEVEL ?? 'info', base: undefined }, pino.destination(2));
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataDir(config.dataDir);
  try {
    return await startLocked(config, opts, log, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function startLocked(config: ServerConfig, opts: StartOptions, log: pino.Logger, lock: DataDirLock): Promise<RunningServer> {
  const { token, file: tokenFile } = loadOrCreateToken(config.dataDir, config.token);

  const db = await openDatabase(config.dataDir);
  const registry = await Registry.open(db, config.dataDir);
  const sandboxes = await SandboxProvider.create({ tier: config.sandbox, poolSize: config.poolSize, log: (m) => log.warn(m) });
  const chosen = sandboxes.tiers.find((t) => t.tier === sandboxes.defaultTier)!;
  const skipped = sandboxes.tiers.filter((t) => !t.ok).map((t) => `${t.tier}: ${t.reason}`);
  log.info(`sandbox tier: ${chosen.tier} (${config.sandbox === 'auto' ? 'auto' : 'chosen'}; ${chosen.reason})${skipped.length ? `; unavailable: ${skipped.join('; ')}` : ''}`);

  const invocations = new InvocationStore(db, config.prices, config.billingGranularityMs, (m) => log.error(m));
  // Every record goes to the store and to the live feed (event streams, the terminal).
  const live = new LiveHub();
  feedFromRegistry(live, registry);
  if (opts.terminalLog !== false) attachTerminalLog(live, { write: (l) => process.stderr.write(l), pretty: !!process.stderr.isTTY, color: !!process.stderr.hasColors?.() });
  const meter = {
    record(r: Parameters<InvocationStore['record']>[0]) {
      invocations.record(r);
      live.publish({ type: 'invocation', record: r });
    },
  };
  const worker = new Worker(registry, sandboxes, meter, workerOptions(config, config.workerId));
  const metrics = new Metrics(() => worker.stats());
  const asyncQueue = new AsyncQueue(db);
  const asyncMetrics = new AsyncMetrics(metrics.registry, asyncQueue);
  const keys = new KeyStore(db, loadOrCreatePepper(config.dataDir));
  const versions = new VersionStore(db, registry);
  registry.on('removed', (name) => void versions.forget(name).catch((err: Error) => log.error(`could not drop the aliases of ${name}: ${err.message}`)));
  const app = await buildGateway({
    keys,
    registry,
    worker,
    invocations,
    metrics,
    versions,
    token,
    payloadLimitBytes: config.payloadLimitBytes,
    deployLimitBytes: config.deployLimitBytes,
    checkManifest: (m) => sandboxes.check(m),
    health: () => ({ worker: worker.id, tier: sandboxes.defaultTier, functions: registry.list().length }),
    log,
    asyncQueue,
    // AWS Invoke with InvocationType Event goes through the same durable queue (a pinned version is kept with the event).
    invokeKeys: (id) => keys.secretFor(id),
    enqueue: async (c) => void (await asyncQueue.enqueue({ function: c.name, event: c.event, requestId: c.requestId, trigger: 'aws', ...(c.opts?.version !== undefined ? { version: c.opts.version } : {}) })),
    live,
    tierFor: (m) => sandboxes.tierFor(m),
  });
  let triggers: Awaited<ReturnType<typeof startTriggers>> | undefined;
  let pruner: InvocationPruner | undefined;

  const shutdown = async () => {
    await app.close();
    await triggers?.stop();
    await worker.shutdown();
    await sandboxes.close();
    await pruner?.stop();
    await invocations.close();
    await db.close();
    lock.release();
  };

  try {
    for (const dir of config.deploy) {
      await registry.deployDir(path.resolve(dir), { validate: (m) => sandboxes.check(m) });
    }
    // One process owns this SQLite queue: events Running at start were cut by a stop or crash.
    triggers = await startTriggers({
      db,
      queue: asyncQueue,
      catalog: registry,
      workerId: worker.id,
      invoke: (name, requestId, event, opts) => worker.invoke(name, requestId, event, opts),
      // No sticky preference on one node: every function is local.
      metrics: asyncMetrics,
      observe: (r) => metrics.observe(r.record),
      recoverAll: true,
      log: (m) => log.warn(m),
    });
    // Records past LAMINA_INVOCATIONS_RETENTION_S go; their billing is kept by day (src/metering/retention.ts).
    pruner = new InvocationPruner(db, invocationRetentionMs(), (m) => log.warn(m), () => invocations.flush());
    pruner.start();
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await shutdown().catch(() => undefined);
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  let closing: Promise<void> | undefined;
  lock.setUrl(`http://${host}:${port}`);
  return {
    url: `http://${host}:${port}`,
    tokenFile,
    tier: chosen.tier,
    tierReason: chosen.reason,
    close: () => (closing ??= shutdown()),
  };
}
