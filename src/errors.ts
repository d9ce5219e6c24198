// One error model for every layer: a type name (the contract's `error.type`)
// and the HTTP status it maps to. Layers throw LaminaError; the gateway renders it.

export const ERROR_STATUS = {
  BadRequest: 400,
  InvalidFunction: 400,
  Unauthorized: 401,
  FunctionNotFound: 404,
  NotFound: 404,
  MethodNotAllowed: 405,
  /** The resource exists already, or changed since the caller read it (e.g. an alias's revision). */
  Conflict: 409,
  PayloadTooLarge: 413,
  TooManyRequests: 429,
  HandlerError: 500,
  InternalError: 500,
  SandboxCrashed: 502,
  MemoryLimitExceeded: 502,
  /** An HTTP function answered something that is not a valid HTTP response. */
  InvalidResponse: 502,
  /** Cluster mode: the worker running the call died or stopped answering; the call may or may not have run. */
  WorkerCrashed: 502,
  ServiceUnavailable: 503,
  Timeout: 504,
} as const;

export type ErrorType = keyof typeof ERROR_STATUS;

export class LaminaError extends Error {
  readonly type: ErrorType;
  readonly status: number;
  /** Extra fields rendered beside type and message (e.g. a handler's stack). */
  readonly extra: Record<string, unknown>;

  constructor(type: ErrorType, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.name = 'LaminaError';
    this.type = type;
    this.status = ERROR_STATUS[type];
    this.extra = extra;
  }
}

export function isLaminaError(err: unknown): err is LaminaError {
  return err instanceof LaminaError;
}
