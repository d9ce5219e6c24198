// The registry's contract: immutable, content-addressed function versions.
import type { RuntimeName, SandboxTier } from '../sandbox/types.js';

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];
/** How an HTTP request reaches the function (docs/api.md "HTTP functions"); wsgi and asgi are python only. */
export const HTTP_EVENTS = ['json', 'request', 'wsgi', 'asgi'] as const;
export type HttpEvent = (typeof HTTP_EVENTS)[number];

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
  /** Most processes/threads one sandbox may hold (cgroup pids.max); absent: the tier's default. */
  processes?: number;
  http: HttpSettings;
  /** Async calls (src/triggers): retries, event age, destinations. Absent: the defaults (2 retries, 21600 s, none). */
  async?: AsyncSettings;
  /** Cron schedules (src/triggers). Absent: none. */
  schedules?: ScheduleSpec[];
}

/** How a function's HTTP requests become calls (DESIGN.md "HTTP functions"). */
export type HttpEventMode = HttpEvent;

export interface CorsSettings {
  /** Origins allowed to read answers; "*" allows any. */
  allowOrigins: string[];
  allowMethods: HttpMethod[];
  allowHeaders: string[];
  exposeHeaders: string[];
  allowCredentials: boolean;
  /** Seconds a browser may cache a preflight answer. */
  maxAge: number;
}

export interface HttpSettings {
  methods: HttpMethod[];
  /** Absent in versions deployed before HTTP functions: read as "json". */
  event?: HttpEventMode;
  /** Absent in older versions: read as "none". */
  auth?: 'none' | 'token';
  cors?: CorsSettings;
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
