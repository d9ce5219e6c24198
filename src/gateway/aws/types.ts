// What the AWS Lambda API needs from the node, declared here so the route
// files import no app (the gateway's app registers this plugin).
import type { Metrics } from '../metrics.js';
import type { Registry } from '../../registry/registry.js';
import type { Manifest } from '../../registry/types.js';
import type { VersionStore } from '../../versions/store.js';
import type { InvokeOptions } from '../../worker/invoke-options.js';
import type { CallResult } from '../../worker/function-runner.js';

/** An asynchronous call handed to a durable queue (InvocationType Event). */
export interface AsyncCall {
  name: string;
  requestId: string;
  event: unknown;
  opts?: InvokeOptions;
}

export interface AwsDeps {
  registry: Registry;
  versions: VersionStore;
  worker: { readonly id: string; invoke(name: string, requestId: string, event: unknown, opts?: InvokeOptions): Promise<CallResult>; whenStartedAhead?(name: string, version: number): Promise<void> };
  metrics: Metrics;
  token: string;
  payloadLimitBytes: number;
  deployLimitBytes: number;
  checkManifest: (m: Manifest) => string | undefined;
  log: { error: (obj: unknown, msg?: string) => void };
  /** Invoke keys by id, with the secret a SigV4 signature is computed with (wired where keys exist). */
  invokeKeys?: (id: string) => Promise<{ secret: string; functions: string[] } | undefined>;
  /** The durable queue for Event calls; without one they run in the background after the 202. */
  enqueue?: (call: AsyncCall) => Promise<void>;
}
