// Returns what the platform tells a call about itself.
interface Context {
  requestId: string;
  functionName: string;
  functionVersion: number;
  memoryLimitMb: number;
  deadlineMs: number;
  coldStart: boolean;
  getRemainingTimeInMillis(): number;
}

export async function handler(_event: unknown, context: Context) {
  return {
    requestId: context.requestId,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    memoryLimitMb: context.memoryLimitMb,
    deadlineMs: context.deadlineMs,
    remainingMs: context.getRemainingTimeInMillis(),
    coldStart: context.coldStart,
  };
}
