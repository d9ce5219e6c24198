// The registry's contract: immutable, content-addressed function versions.
import type { RuntimeName, SandboxTier } from '../sandbox/types.js';

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** A validated lamina.json with every default filled in. */
export interface Manifest {
  name: string;
  runtime: RuntimeName;
  /** Source entry file, relative to the function directory. */
  entry: string;
  handler: string;
  memoryMb: number;
  timeoutMs: number;
  concurrency: number;
  instanceConcurrency: number;
  sandbox: 'auto' | SandboxTier;
  env: Record<string, string>;
  network: boolean;
  http: { methods: HttpMethod[] };
  /** Async calls (src/triggers): retries, event age, destinations. Absent: the defaults (2 retries, 21600 s, none). */
  async?: AsyncSettings;
  /** Cron schedules (src/triggers). Absent: none. */
  schedules?: ScheduleSpec[];
}

export interface AsyncSettings {
  /** 0 to 10 (default 2). */
  retries: number;
  /** 60 to 21600 (default 21600). */
  maxEventAgeS: number;
  /** Function called asynchronously with the destination record. */
  onSuccess?: string;
  onFailure?: string;
}

export interface ScheduleSpec {
  /** Five fields, or six with seconds first. */
  cron: string;
  /** The event each firing sends (default {}). */
  event: unknown;
  /** IANA time zone (default UTC). */
  timezone: string;
}

/** One deployed, immutable version of a function. */
export interface FunctionVersion {
  name: string;
  /** 1, 2, 3... per function; never reused, even after delete and redeploy. */
  version: number;
  /** sha256 (hex) of the stored code; equal code shares one directory on disk. */
  codeHash: string;
  manifest: Manifest;
  /** Absolute host directory holding the runnable code (read-only). */
  codeDir: string;
  /** File inside codeDir that the runtime loads (e.g. the compiled `index.mjs`). */
  codeEntry: string;
  /** Total bytes of the stored code. */
  sizeBytes: number;
  createdAt: string;
  /** Package-cache entry holding the installed dependencies (src/packages), when the function declares any. */
  packagesHash?: string;
  /** Its node_modules directory on this host (read-only). */
  packagesDir?: string;
}

export interface FunctionSummary {
  name: string;
  version: number;
  runtime: RuntimeName;
  memoryMb: number;
  sandbox: Manifest['sandbox'];
  codeHash: string;
  updatedAt: string;
}

/** Events the worker listens to, so instances follow deploys and deletes. */
export interface RegistryEvents {
  deployed: (fn: FunctionVersion) => void;
  removed: (name: string) => void;
}
