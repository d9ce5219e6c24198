// Server configuration: defaults, overridden by LAMINA_* environment variables,
// overridden by command-line flags. docs/configuration.md lists every setting.
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_PRICES, type Prices } from './metering/billing.js';
import type { SandboxTier } from './sandbox/types.js';

export interface ServerConfig {
  port: number;
  host: string;
  dataDir: string;
  sandbox: 'auto' | SandboxTier;
  workerId: string;
  /** Pre-started idle sandboxes kept per shape in use. */
  poolSize: number;
  keepAliveMs: number;
  maxQueue: number;
  billingGranularityMs: number;
  memoryBudgetMb: number;
  memoryWaitMs: number;
  pauseAfterMs: number;
  /** Pace instance starts and hold a function at the cores' limit (src/worker/scale-gate.ts). */
  scaleByCpu: boolean;
  payloadLimitBytes: number;
  deployLimitBytes: number;
  prices: Prices;
  /** Admin token; when unset, read from or generated into DATA_DIR/token. */
  token: string | undefined;
  /** Function directories deployed at start. */
  deploy: string[];
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.LAMINA_DATA_DIR || path.join(os.homedir(), '.lamina');
}

function num(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${key} must be a non-negative number (got "${raw}")`);
  return n;
}

/** A number that may be negative (e.g. -1 = "never"). */
function signedNum(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`${key} must be a number (got "${raw}")`);
  return n;
}

function flag(env: NodeJS.ProcessEnv, key: string, fallback: boolean): boolean {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  if (raw === '1' || raw === '0') return raw === '1';
  throw new Error(`${key} must be 1 or 0 (got "${raw}")`);
}

/** Defaults and environment; the CLI layers its flags on top. */
export function baseConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  return {
    port: 5000,
    host: '127.0.0.1',
    dataDir: defaultDataDir(env),
    sandbox: (env.LAMINA_SANDBOX as ServerConfig['sandbox']) || 'auto',
    workerId: env.LAMINA_WORKER_ID || os.hostname(),
    poolSize: num(env, 'LAMINA_POOL_SIZE', 4),
    keepAliveMs: num(env, 'LAMINA_KEEP_ALIVE_MS', 10 * 60_000),
    maxQueue: num(env, 'LAMINA_MAX_QUEUE', 100),
    billingGranularityMs: num(env, 'LAMINA_BILLING_GRANULARITY_MS', 100),
    memoryBudgetMb: num(env, 'LAMINA_MEMORY_BUDGET_MB', Math.floor((os.totalmem() / 1048576) * 0.75)),
    memoryWaitMs: num(env, 'LAMINA_MEMORY_WAIT_MS', 10_000),
    // Negative: never pause (docs/configuration.md).
    pauseAfterMs: signedNum(env, 'LAMINA_PAUSE_AFTER_MS', 1000),
    scaleByCpu: flag(env, 'LAMINA_SCALE_BY_CPU', true),
    payloadLimitBytes: num(env, 'LAMINA_PAYLOAD_LIMIT_BYTES', 6 * 1024 * 1024),
    deployLimitBytes: num(env, 'LAMINA_DEPLOY_LIMIT_BYTES', 50 * 1024 * 1024),
    prices: {
      perGbSecond: num(env, 'LAMINA_PRICE_GB_SECOND', DEFAULT_PRICES.perGbSecond),
      perRequest: num(env, 'LAMINA_PRICE_REQUEST', DEFAULT_PRICES.perRequest),
    },
    token: env.LAMINA_TOKEN || undefined,
    deploy: [],
  };
}

export function validateConfig(c: ServerConfig): void {
  const tiers = ['auto', 'container', 'process', 'isolate'];
  if (!tiers.includes(c.sandbox)) throw new Error(`sandbox must be one of ${tiers.join(', ')} (got "${c.sandbox}")`);
  if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535) throw new Error(`port must be an integer from 0 to 65535 (got ${c.port})`);
  if (!Number.isInteger(c.billingGranularityMs) || c.billingGranularityMs < 1) throw new Error(`billing granularity must be a whole number of ms, at least 1 (got ${c.billingGranularityMs})`);
  if (c.maxQueue < 0 || !Number.isInteger(c.maxQueue)) throw new Error(`max queue must be a non-negative integer (got ${c.maxQueue})`);
}
