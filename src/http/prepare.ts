// Turns one call into what the sandbox runs, once the instance (and so the
// module's kind) is known, and reads the answer back. The worker side of HTTP
// functions: the gateway only carries the raw request (HttpCall) here and the
// checked HttpResponse back.
import { LaminaError } from '../errors.js';
import type { Manifest } from '../registry/types.js';
import type { HttpFrame, InvokeOutcome, ModuleKind } from '../sandbox/types.js';
import type { HttpCall } from './call.js';
import { absoluteUrl, buildEvent, buildFetchEvent } from './event.js';
import { checkResponse, responseOfRequestMode, type HttpResponse } from './response.js';

export interface PreparedCall {
  event: unknown;
  http?: HttpFrame;
}

/** A call without a raw request (an async event, a schedule) reaches a fetch handler as a POST of its JSON. */
function syntheticCall(name: string, event: unknown): HttpCall {
  const body = Buffer.from(JSON.stringify(event === undefined ? {} : event));
  return { method: 'POST', url: `/run/${name}`, headers: [['host', 'localhost'], ['content-type', 'application/json']], body, sourceIp: '127.0.0.1', protocol: 'HTTP/1.1' };
}

/**
 * The event and runtime-protocol `http` field of a call. json mode stays as
 * it was (the parsed JSON body), unless the module turned out to be a fetch
 * handler; a json-mode event handler refuses a body that is not JSON (400).
 */
export function prepareCall(m: Manifest, kind: ModuleKind | undefined, requestId: string, event: unknown, call: HttpCall | undefined): PreparedCall {
  const mode = kind === 'fetch' ? 'fetch' : (m.http.event ?? 'json');
  if (mode === 'json') {
    if (call?.jsonError) throw new LaminaError('BadRequest', call.jsonError);
    return { event };
  }
  if (!call && mode !== 'fetch') return { event, http: { mode, url: `http://localhost/run/${m.name}`, basePath: `/run/${m.name}` } };
  const c = call ?? syntheticCall(m.name, event);
  // A fetch handler gets the small event its Request is built from, the others the function-URL 2.0 event.
  return { event: mode === 'fetch' ? buildFetchEvent(c) : buildEvent(c, m.name, requestId), http: { mode, url: absoluteUrl(c), basePath: `/run/${m.name}` } };
}

/**
 * Reads an HTTP function's successful outcome into a checked response; an
 * answer that is not a valid response turns the outcome into InvalidResponse.
 */
export function readAnswer(outcome: InvokeOutcome, http: HttpFrame | undefined): HttpResponse | undefined {
  if (!http || !outcome.ok) return undefined;
  try {
    return http.mode === 'request' ? responseOfRequestMode(outcome.value) : checkResponse(outcome.value, `the ${http.mode} handler's answer`);
  } catch (err) {
    const e = err as LaminaError;
    outcome.ok = false;
    outcome.error = { type: 'InvalidResponse', message: e.message };
    outcome.logs += `[lamina] InvalidResponse: ${e.message}\n`;
    return undefined;
  } finally {
    // The value now lives in the response; do not carry it twice (cluster answers).
    delete outcome.value;
  }
}
