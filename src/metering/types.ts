// The metering contract (DESIGN.md, "Metering"): one record per invocation.

import type { InvocationTrigger } from '../worker/invoke-options.js';

export type InvocationStatus = 'Success' | 'HandlerError' | 'Timeout' | 'SandboxCrashed' | 'MemoryLimitExceeded' | 'InvalidResponse';

export interface InvocationRecord {
  requestId: string;
  function: string;
  version: number;
  worker: string;
  instance: string;
  /** ISO time the call was dispatched to its instance. */
  startedAt: string;
  durationMs: number;
  billedMs: number;
  /** The function's memory cap. */
  memoryMb: number;
  /** Peak memory of the instance so far, in MB. */
  maxMemoryMb: number;
  gbSeconds: number;
  cold: boolean;
  /** Time spent loading the function into its sandbox (cold calls only). */
  initMs: number | null;
  status: InvocationStatus;
  statusCode: number;
  /** Captured stdout and stderr of the call. */
  logs: string;
  /** How the call arrived (absent in records written before migration 0005: "http"). */
  trigger?: InvocationTrigger;
}

/** Where the worker sends records; the store batches and persists them. */
export interface MeterSink {
  record(r: InvocationRecord): void;
}
