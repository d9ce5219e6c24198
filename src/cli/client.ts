// The CLI's HTTP client for a Lamina server: finds the URL and token, and turns
// every failure into one clear line.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { defaultDataDir } from '../config.js';

export class CliError extends Error {}

export interface ClientOptions {
  url?: string;
  token?: string;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
  url?: string;
}

export function resolveUrl(opts: ClientOptions): string {
  return (opts.url || process.env.LAMINA_URL || 'http://127.0.0.1:5000').replace(/\/+$/, '');
}

export function resolveToken(opts: ClientOptions): string {
  const explicit = opts.token || process.env.LAMINA_TOKEN;
  if (explicit) return explicit;
  const file = path.join(defaultDataDir(), 'token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  throw new CliError(`no admin token: pass --token, set LAMINA_TOKEN, or run this where ${file} exists`);
}

export class Client {
  readonly url: string;
  private tokenValue: string | undefined;

  constructor(private readonly opts: ClientOptions) {
    this.url = resolveUrl(opts);
  }

  get token(): string {
    return (this.tokenValue ??= resolveToken(this.opts));
  }

  async request(method: string, route: string, init: { body?: Buffer | string; admin?: boolean; contentType?: string; bearer?: string; headers?: Record<string, string> } = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...init.headers };
    if (init.admin !== false) headers.authorization = `Bearer ${this.token}`;
    else if (init.bearer) headers.authorization = `Bearer ${init.bearer}`;
    if (init.body !== undefined) headers['content-type'] = init.contentType ?? 'application/json';
    let res: Response;
    try {
      res = await fetch(this.url + route, { method, headers, body: init.body as BodyInit | undefined });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach ${this.url}: ${cause?.code ?? cause?.message ?? (err as Error).message} (is \`lamina up\` running? set --url or LAMINA_URL)`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json, url: this.url };
  }

  /** An admin call that must succeed; a non-2xx answer becomes a CliError with the server's message. */
  async admin<T>(method: string, route: string, body?: Buffer | string, contentType?: string): Promise<T> {
    const res = await this.request(method, route, { body, contentType });
    if (res.status >= 400 || res.json === undefined) throw new CliError(errorLine(res));
    return res.json as T;
  }
}

/** "Type: message" from an error response. */
export function errorLine(res: ApiResponse): string {
  const e = (res.json as { error?: { type?: string; message?: string } } | undefined)?.error;
  if (e) return `${e.type}: ${e.message}`;
  // Something else answered (another web server, a proxy's error page): one line, never its HTML.
  const type = res.headers.get('content-type')?.split(';')[0] ?? 'no content type';
  return `${res.url ?? 'the server'} did not answer as a Lamina server (HTTP ${res.status}, ${type}); check --url or LAMINA_URL`;
}
