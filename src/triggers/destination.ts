// The record a destination function receives (AWS Lambda's asynchronous
// invocation record, DESIGN.md "Asynchronous calls").

export type DestinationCondition = 'Success' | 'RetriesExhausted' | 'EventAgeExceeded';

export interface FailureInfo {
  type: string;
  message: string;
  stack?: string;
}

export interface DestinationRecord {
  version: '1.0';
  timestamp: string;
  requestContext: { requestId: string; functionName: string; condition: DestinationCondition; approximateInvokeCount: number };
  requestPayload: unknown;
  responseContext: { statusCode: number | null; functionError: string | null };
  responsePayload: unknown;
}

export function destinationRecord(a: {
  requestId: string;
  functionName: string;
  condition: DestinationCondition;
  attempts: number;
  event: unknown;
  /** The HTTP status the last attempt's outcome maps to; null when it never ran. */
  statusCode: number | null;
  result?: unknown;
  error?: FailureInfo | null;
  now?: Date;
}): DestinationRecord {
  const failed = a.condition !== 'Success';
  return {
    version: '1.0',
    timestamp: (a.now ?? new Date()).toISOString(),
    requestContext: { requestId: a.requestId, functionName: a.functionName, condition: a.condition, approximateInvokeCount: a.attempts },
    requestPayload: a.event,
    responseContext: { statusCode: a.statusCode, functionError: failed && a.error ? 'Unhandled' : null },
    responsePayload: failed
      ? a.error
        ? { errorType: a.error.type, errorMessage: a.error.message, ...(a.error.stack ? { stackTrace: a.error.stack.split('\n') } : {}) }
        : null
      : (a.result ?? null),
  };
}
