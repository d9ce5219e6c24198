// json mode's event: the JSON body (an empty body is {}).

/** The parsed body, or why it is not JSON. */
export function parseJsonBody(body: Buffer | undefined): { event: unknown } | { jsonError: string } {
  if (!body || body.length === 0) return { event: {} };
  const text = body.toString('utf8');
  if (text.trim() === '') return { event: {} };
  try {
    return { event: JSON.parse(text) as unknown };
  } catch (err) {
    return { jsonError: `the request body is not valid JSON: ${(err as Error).message}` };
  }
}
