// Shapes of the admin API's answers the console reads (see docs/api.md).

export interface FunctionSummary {
  name: string;
  version: number;
  runtime: string;
  memoryMb: number;
  sandbox: string;
  codeHash: string;
  updatedAt: string;
}

export interface InvocationRecord {
  requestId: string;
  function: string;
  version: number;
  worker: string;
  instance: string;
  startedAt: string;
  durationMs: number;
  billedMs: number;
  memoryMb: number;
  maxMemoryMb: number;
  gbSeconds: number;
  cold: boolean;
  initMs: number | null;
  status: string;
  statusCode: number;
  logs?: string;
}

export interface BillingLine {
  function: string;
  invocations: number;
  errors: number;
  coldStarts: number;
  billedMs: number;
  gbSeconds: number;
  cost: { compute: number; requests: number; total: number };
}

export interface BillingReport {
  since: string | null;
  until: string | null;
  granularityMs: number;
  prices: { perGbSecond: number; perRequest: number };
  functions: BillingLine[];
  total: Omit<BillingLine, 'function'>;
}

export interface WorkerStats {
  id: string;
  memory: { budgetMb: number; reservedMb: number; waiting: number };
  functions: { name: string; version: number; starting: number; busy: number; idle: number; paused: number; queue: number }[];
}

export interface FunctionDetail {
  name: string;
  version: number;
  codeHash: string;
  sizeBytes: number;
  createdAt: string;
  manifest: Record<string, unknown> & { runtime: string; sandbox: string; memoryMb: number; timeoutMs: number };
  versions: { version: number; codeHash: string; createdAt: string }[];
  load: WorkerStats['functions'][number] | null;
  instances: { id: string; version: number; state: string; tier: string | null; inflight: number; calls: number; paused: boolean; memoryMb: number | null }[];
}

export interface Bucket {
  t: number;
  calls: number;
  errors: number;
  p50: number | null;
  p99: number | null;
}
