// Tells a database that cannot be reached right now (restarting, shutting
// down, refusing connections) from a query that is wrong: the first is worth
// retrying and is answered 503 ServiceUnavailable, the second is a 500.
import { LaminaError } from '../errors.js';

/** Socket-level failures of the database connection. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/**
 * Whether `err` says the database is unavailable: PostgreSQL's SQLSTATE class 08
 * (connection exception) and 57P01-57P03 (admin shutdown, crash shutdown, cannot
 * connect now: a restart), a socket error, or the pool's lost-connection errors.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (/^08[0-9A-Z]{3}$/.test(code) || ['57P01', '57P02', '57P03'].includes(code) || NETWORK_CODES.has(code)) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return /^Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(message);
}

/** A 503 for an unavailable database, or undefined for any other error. */
export function databaseUnavailableError(err: unknown): LaminaError | undefined {
  if (!isDatabaseUnavailable(err)) return undefined;
  return new LaminaError('ServiceUnavailable', `the database is unavailable (${(err as Error).message}); nothing was changed, retry shortly`);
}
