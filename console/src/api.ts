// The console's only link to the server: the admin API with the token kept in
// this tab's sessionStorage (gone when the tab closes), and the live event
// stream read with fetch (EventSource cannot send the Authorization header).

const KEY = 'lamina.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export function getToken(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
  window.dispatchEvent(new Event('lamina-auth'));
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const e = (JSON.parse(text) as { error?: { type?: string; message?: string } }).error;
    if (e) return new ApiError(res.status, e.type ?? 'Error', e.message ?? text);
  } catch {
    // not JSON
  }
  return new ApiError(res.status, 'HTTP', `HTTP ${res.status}`);
}

/** An admin API call; a 401 logs the tab out. */
export async function api<T>(path: string, init: { method?: string; body?: unknown; token?: string } = {}): Promise<T> {
  const token = init.token ?? getToken() ?? '';
  const res = await fetch(`/api/v1${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && !init.token) setToken(null);
    throw err;
  }
  return (await res.json()) as T;
}

export interface InvokeAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Calls a function the way any client would, with the admin token (enough for `auth: "token"` functions too). */
export async function invoke(name: string, body: string): Promise<InvokeAnswer> {
  const res = await fetch(`/run/${encodeURIComponent(name)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${getToken() ?? ''}` },
    body,
  });
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (k.startsWith('x-lamina-')) headers[k] = v;
  });
  return { status: res.status, headers, body: await res.text() };
}

export interface LiveMessage {
  event: string;
  data: unknown;
}

/** Reads GET /api/v1/events until `signal` aborts, reconnecting after a drop. */
export async function streamEvents(onMessage: (m: LiveMessage) => void, onState: (connected: boolean) => void, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      const res = await fetch('/api/v1/events', { headers: { authorization: `Bearer ${getToken() ?? ''}` }, signal });
      if (res.status === 401) return setToken(null);
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (!data.length) continue;
          if (event === 'ready') onState(true);
          try {
            onMessage({ event, data: JSON.parse(data.join('\n')) });
          } catch {
            // a malformed frame is skipped
          }
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    onState(false);
    await new Promise((r) => setTimeout(r, 2000));
  }
}
