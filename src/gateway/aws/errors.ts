// AWS's error model for the Lambda API: a status, the exception's name in
// x-amzn-ErrorType, and {"Type", "message"} (or "Message", as the SDK's model
// names it per exception). Lamina's own errors map onto it here, once.
import type { FastifyReply } from 'fastify';
import { isLaminaError } from '../../errors.js';

export class AwsError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    /** Extra headers (e.g. Retry-After) and body fields (e.g. Reason). */
    readonly extra: { headers?: Record<string, string>; body?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.name = code;
  }
}

export const notFound = (message: string) => new AwsError('ResourceNotFoundException', 404, message);
export const invalidParameter = (message: string) => new AwsError('InvalidParameterValueException', 400, message);
export const conflict = (message: string) => new AwsError('ResourceConflictException', 409, message);
export const invalidSignature = (message: string) => new AwsError('InvalidSignatureException', 403, message);
export const accessDenied = (message: string) => new AwsError('AccessDeniedException', 403, message);

/** Exceptions whose model spells the field "Message" (the others use "message"). */
const CAPITAL_MESSAGE = new Set(['ResourceNotFoundException', 'ServiceException']);

/** Any error thrown while serving an AWS route, as AWS would name it. */
export function toAwsError(err: unknown): AwsError {
  if (err instanceof AwsError) return err;
  if (isLaminaError(err)) {
    switch (err.type) {
      case 'FunctionNotFound':
      case 'NotFound':
        return notFound(err.message);
      case 'BadRequest':
      case 'InvalidFunction':
        return invalidParameter(err.message);
      case 'Conflict':
        return conflict(err.message);
      case 'TooManyRequests':
        return new AwsError('TooManyRequestsException', 429, err.message, { headers: { 'retry-after': '1' }, body: { Reason: 'ConcurrentInvocationLimitExceeded' } });
      case 'PayloadTooLarge':
        return new AwsError('RequestTooLargeException', 413, err.message);
      case 'Unauthorized':
        return accessDenied(err.message);
      case 'ServiceUnavailable':
        return new AwsError('ServiceException', 503, err.message);
      default:
        return new AwsError('ServiceException', 500, err.message);
    }
  }
  const e = err as { code?: string; statusCode?: number; message?: string };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413) return new AwsError('RequestTooLargeException', 413, 'the request body exceeds the size limit');
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return invalidParameter(e.message ?? 'bad request');
  return new AwsError('ServiceException', 500, e.message ?? 'internal error');
}

export function sendAwsError(reply: FastifyReply, err: AwsError, requestId: string): FastifyReply {
  const key = CAPITAL_MESSAGE.has(err.code) ? 'Message' : 'message';
  reply.headers({ 'x-amzn-requestid': requestId, 'x-amzn-errortype': err.code, ...err.extra.headers });
  return reply
    .code(err.status)
    .type('application/json')
    .send(JSON.stringify({ Type: err.status >= 500 ? 'Service' : 'User', [key]: err.message, ...err.extra.body }));
}
