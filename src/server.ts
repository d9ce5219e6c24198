// One node: registry, sandboxes, worker and gateway in one process (`lamina up`).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { ServerConfig } from './config.js';
import { buildGateway } from './gateway/app.js';
import { Metrics } from './gateway/metrics.js';
import { InvocationStore } from './metering/store.js';
import { Registry } from './registry/registry.js';
import { SandboxProvider } from './sandbox/provider.js';
import { openDatabase } from './store/db.js';
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

export async function startServer(config: ServerConfig): Promise<RunningServer> {
  const log = pino({ level: process.env.LAMINA_LOG_LEVEL ?? 'info', base: undefined }, pino.destination(2));
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const { token, file: tokenFile } = loadOrCreateToken(config.dataDir, config.token);

  const db = await openDatabase(config.dataDir);
  const registry = await Registry.open(db, config.dataDir);
  const sandboxes = await SandboxProvider.create({ tier: config.sandbox, poolSize: config.poolSize, log: (m) => log.warn(m) });
  const chosen = sandboxes.tiers.find((t) => t.tier === sandboxes.defaultTier)!;
  const skipped = sandboxes.tiers.filter((t) => !t.ok).map((t) => `${t.tier}: ${t.reason}`);
  log.info(`sandbox tier: ${chosen.tier} (${config.sandbox === 'auto' ? 'auto' : 'chosen'}; ${chosen.reason})${skipped.length ? `; unavailable: ${skipped.join('; ')}` : ''}`);

  const invocations = new InvocationStore(db, config.prices, config.billingGranularityMs, (m) => log.error(m));
  const worker = new Worker(registry, sandboxes, invocations, workerOptions(config, config.workerId));
  const metrics = new Metrics(() => worker.stats());
  const versions = new VersionStore(db, registry);
  registry.on('removed', (name) => void versions.forget(name).catch((err: Error) => log.error(`could not drop the aliases of ${name}: ${err.message}`)));
  const app = await buildGateway({
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
  });

  const shutdown = async () => {
    await app.close();
    await worker.shutdown();
    await sandboxes.close();
    await invocations.flush();
    await db.close();
  };

  try {
    for (const dir of config.deploy) {
      const fv = await registry.deployDir(path.resolve(dir), { validate: (m) => sandboxes.check(m) });
      log.info(`deployed ${fv.name} version ${fv.version} from ${dir}`);
    }
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await shutdown().catch(() => undefined);
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    tokenFile,
    tier: chosen.tier,
    tierReason: chosen.reason,
    close: () => (closing ??= shutdown()),
  };
}
