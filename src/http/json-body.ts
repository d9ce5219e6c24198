// json mode's event: the JSON body (an empty body is {}).
import { MAX_EVENT_DEPTH, jsonDepth } from './json-depth.js';

/** The parsed body, or why it is not JSON. */
export function parseJsonBody(body: Buffer | undefined): { event: unknown } | { jsonError: string } {
  if (!body || body.length === 0) return { event: {} };
  const text = body.toString('utf8');
  if (text.trim() === '') return { event: {} };
  // Checked before the parse: a deep event would overflow the stack of whoever serializes it next.
  if (jsonDepth(text, MAX_EVENT_DEPTH) > MAX_EVENT_DEPTH) return { jsonError: `the event is nested deeper than ${MAX_EVENT_DEPTH} levels of arrays and objects` };
  try {
    return { event: JSON.parse(text) as unknown };
  } catch (err) {
    return { jsonError: `the request body is not valid JSON: ${(err as Error).message}` };
  }
}
