// The CLI's reader of GET /api/v1/events (server-sent events over a streamed
// fetch, with the token in the Authorization header): `lamina logs -f` and
// `lamina dev` follow calls with it.
import { CliError } from './client.js';

export interface SseMessage {
  event: string;
  data: string;
}

/** Splits an SSE byte stream into messages (event name and joined data lines); comments are skipped. */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let cut: number;
    while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + (buf[cut] === '\r' ? 4 : 2));
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(':')) continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length) yield { event, data: data.join('\n') };
    }
  }
}

export interface FollowOptions {
  url: string;
  token: string;
  function?: string;
  signal?: AbortSignal;
  onReady?: () => void;
}

/** Yields the stream's events (parsed JSON) until the server or the signal ends it. */
export async function* follow(opts: FollowOptions): AsyncGenerator<{ event: string; data: unknown }> {
  const q = opts.function ? `?function=${encodeURIComponent(opts.function)}` : '';
  let res: Response;
  try {
    res = await fetch(`${opts.url}/api/v1/events${q}`, { headers: { authorization: `Bearer ${opts.token}`, accept: 'text/event-stream' }, signal: opts.signal });
  } catch (err) {
    if (opts.signal?.aborted) return;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(`cannot reach ${opts.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  if (res.status >= 400) {
    const text = await res.text();
    let msg = `HTTP ${res.status}`;
    try {
      const e = (JSON.parse(text) as { error?: { type?: string; message?: string } }).error;
      if (e) msg = `${e.type}: ${e.message}`;
    } catch {
      msg = `${opts.url} did not answer as a Lamina server (HTTP ${res.status})`;
    }
    throw new CliError(msg);
  }
  if (!res.headers.get('content-type')?.startsWith('text/event-stream') || !res.body) throw new CliError(`${opts.url} did not answer as a Lamina server (no event stream)`);
  try {
    for await (const m of parseSse(res.body as unknown as AsyncIterable<Uint8Array>)) {
      if (m.event === 'ready') {
        opts.onReady?.();
        continue;
      }
      let data: unknown;
      try {
        data = JSON.parse(m.data);
      } catch {
        continue;
      }
      yield { event: m.event, data };
    }
  } catch (err) {
    if (opts.signal?.aborted) return;
    throw new CliError(`the event stream from ${opts.url} broke: ${(err as Error).message}`);
  }
}
