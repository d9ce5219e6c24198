// One instance of one function version: a sandbox plus the worker's bookkeeping.
import type { FunctionVersion } from '../registry/types.js';
import type { SafeSandbox } from '../sandbox/safe-sandbox.js';

export type InstanceState = 'starting' | 'ready' | 'dead';

let seq = 0;

export class Instance {
  readonly id: string;
  state: InstanceState = 'starting';
  /** Every backend's sandbox reaches the worker through the SafeSandbox wrapper. */
  sandbox: SafeSandbox | undefined;
  inflight = 0;
  calls = 0;
  lastUsed = Date.now();
  /** Memory reserved in the worker's budget for this instance (MB). */
  reservedMb = 0;
  /** Time spent specializing the sandbox (ms). */
  initMs = 0;
  /** Started at deploy, before any call asked for it (isolate preload): a call that finds it ready is not a cold start. */
  startedAhead = false;
  /** Set while a pause is pending, so a new call can cancel it. */
  pauseTimer: NodeJS.Timeout | undefined;

  constructor(readonly version: FunctionVersion) {
    this.id = `i-${(seq++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  }

  /** A method, not a field read, so callers re-check after an await. */
  isDead(): boolean {
    return this.state === 'dead';
  }

  /** Frozen (the wrapper is the one place that knows). */
  get paused(): boolean {
    return this.sandbox?.paused ?? false;
  }

  get idle(): boolean {
    return this.state === 'ready' && this.inflight === 0;
  }

  hasRoom(): boolean {
    return this.state === 'ready' && this.inflight < this.version.manifest.instanceConcurrency && (this.sandbox?.alive ?? false);
  }
}
