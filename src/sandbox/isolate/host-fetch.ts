// The host side of the isolate's fetch (network: true only): http(s) only,
// bounded by the call's deadline, with a cap on the response body.
const MAX_BODY_BYTES = 10 * 1024 * 1024;

interface FetchRequest {
  url: string;
  method: string;
  headers: [string, string][];
  body: string | null;
  deadlineMs: number;
}

/**
 * Never rejects (isolated-vm leaves a rejected host promise unhandled, which
 * would end the host): failures come back as `{"error": message}`.
 */
export function hostFetch(json: unknown): Promise<string> {
  return doFetch(json).catch((err: unknown) => JSON.stringify({ error: err instanceof Error ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}` : String(err) }));
}

async function doFetch(json: unknown): Promise<string> {
  if (typeof json !== 'string' || json.length > 16 * 1024 * 1024) throw new TypeError('bad fetch request');
  const r = JSON.parse(json) as FetchRequest;
  const url = new URL(String(r.url));
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`only http: and https: URLs can be fetched (got ${url.protocol})`);
  const ms = Math.min(Math.max(1, Number(r.deadlineMs) - Date.now()), 900_000);
  const res = await fetch(url, {
    method: String(r.method),
    headers: Array.isArray(r.headers) ? r.headers.map(([k, v]) => [String(k), String(v)] as [string, string]) : [],
    body: typeof r.body === 'string' ? Buffer.from(r.body, 'base64') : undefined,
    redirect: 'follow',
    signal: AbortSignal.timeout(ms),
  });
  const chunks: Buffer[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > MAX_BODY_BYTES) throw new RangeError(`the response body is larger than ${MAX_BODY_BYTES} bytes`);
      chunks.push(Buffer.from(chunk));
    }
  }
  return JSON.stringify({
    status: res.status,
    statusText: res.statusText,
    url: res.url,
    redirected: res.redirected,
    headers: [...res.headers],
    body: Buffer.concat(chunks).toString('base64'),
  });
}
