// CORS for functions whose manifest has `http.cors`: the gateway answers
// preflights itself (no call, no billing) and adds the allow-origin headers to
// every answer for an allowed origin. Other origins get no CORS header at all,
// so the browser keeps the answer from the page.
import type { CorsSettings } from '../registry/types.js';

function allowedOrigin(cors: CorsSettings, origin: string | undefined): string | undefined {
  if (!origin) return undefined;
  if (cors.allowOrigins.includes(origin)) return origin;
  return cors.allowOrigins.includes('*') ? '*' : undefined;
}

/** Headers for an actual (non-preflight) answer; empty for other origins. */
export function corsHeaders(cors: CorsSettings | undefined, origin: string | undefined): Record<string, string> {
  if (!cors) return {};
  const allow = allowedOrigin(cors, origin);
  // Vary even when refused: a shared cache must not serve one origin's answer to another.
  if (!allow) return origin ? { vary: 'Origin' } : {};
  return {
    'access-control-allow-origin': allow,
    ...(allow !== '*' ? { vary: 'Origin' } : {}),
    ...(cors.allowCredentials ? { 'access-control-allow-credentials': 'true' } : {}),
    ...(cors.exposeHeaders.length ? { 'access-control-expose-headers': cors.exposeHeaders.join(', ') } : {}),
  };
}

/** Whether a request is a CORS preflight. */
export function isPreflight(method: string, headers: Record<string, string | string[] | undefined>): boolean {
  return method === 'OPTIONS' && typeof headers.origin === 'string' && typeof headers['access-control-request-method'] === 'string';
}

/**
 * The preflight answer's headers, or undefined when the origin, the method or
 * one of the headers asked for is not allowed (answered without CORS headers).
 */
export function preflightHeaders(cors: CorsSettings, origin: string, method: string, requestHeaders: string | undefined): Record<string, string> | undefined {
  const allow = allowedOrigin(cors, origin);
  if (!allow) return undefined;
  if (!cors.allowMethods.includes(method.toUpperCase() as CorsSettings['allowMethods'][number])) return undefined;
  const asked = (requestHeaders ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  if (asked.some((h) => !cors.allowHeaders.includes(h) && !cors.allowHeaders.includes('*'))) return undefined;
  return {
    'access-control-allow-origin': allow,
    'access-control-allow-methods': cors.allowMethods.join(', '),
    ...(asked.length ? { 'access-control-allow-headers': asked.join(', ') } : {}),
    ...(cors.allowCredentials ? { 'access-control-allow-credentials': 'true' } : {}),
    'access-control-max-age': String(cors.maxAge),
    vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
  };
}
