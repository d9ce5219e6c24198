// The raw HTTP request of one call, as the gateway received it. Plain data (the
// body a Buffer), so a cluster gateway can forward it to a worker intact.

export interface HttpCall {
  method: string;
  /** Path and query as the client sent them, /run/:name included. */
  url: string;
  /** Header pairs in arrival order, names lower-case, repeated names kept. */
  headers: [string, string][];
  /** The body, byte for byte. */
  body: Buffer;
  sourceIp: string;
  /** e.g. "HTTP/1.1" */
  protocol: string;
  /**
   * json mode only: why the body is not JSON. The gateway cannot yet know
   * whether the module is a fetch handler (that needs no JSON), so the worker
   * refuses the call with 400 only once it knows it is an event handler.
   */
  jsonError?: string;
}

/** The value of one header (repeated ones joined with ","), or undefined. */
export function headerOf(call: Pick<HttpCall, 'headers'>, name: string): string | undefined {
  let out: string | undefined;
  for (const [k, v] of call.headers) if (k === name) out = out === undefined ? v : `${out},${v}`;
  return out;
}

/** The function's base path and the sub-path after it ("/" when none). */
export function splitPath(url: string, name: string): { basePath: string; rawPath: string; rawQueryString: string } {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const rawQueryString = q === -1 ? '' : url.slice(q + 1);
  const basePath = `/run/${name}`;
  // The client may have percent-encoded the name: skip /run/ and the first segment, whatever its spelling.
  const afterRun = path.slice('/run/'.length);
  const slash = afterRun.indexOf('/');
  const rawPath = slash === -1 ? '/' : afterRun.slice(slash) || '/';
  return { basePath, rawPath, rawQueryString };
}
