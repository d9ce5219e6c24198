// GET /api/v1/events: the live feed as server-sent events, behind the admin
// token like the rest of /api/v1. Browsers read it with fetch() and a
// streamed body (EventSource cannot send an Authorization header, and a token
// in the URL would end up in logs and history), the CLI with undici.
//
// Events: `ready` once subscribed (clients may rely on everything published
// after it reaching them), then `invocation` (the record, logs included),
// `deployed` and `removed`. `?function=NAME` keeps one function's events (404
// if it does not exist). A comment line every 15 s keeps proxies from timing
// the stream out. A client that cannot keep up (1 MB unread) is cut off; it
// reconnects and reads what it missed from /api/v1/invocations.
import type { FastifyInstance } from 'fastify';
import { LaminaError } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import type { LiveEvent, LiveHub } from './hub.js';

const HEARTBEAT_MS = 15_000;
const MAX_BACKLOG_BYTES = 1024 * 1024;

function nameOf(e: LiveEvent): string {
  return e.type === 'invocation' ? e.record.function : e.name;
}

export function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

// Every stream gets the same event object: serialize it once, not once per stream.
const wire = new WeakMap<LiveEvent, string>();

function frameOf(e: LiveEvent): string {
  let text = wire.get(e);
  if (text === undefined) {
    text = frame(e.type, e.type === 'invocation' ? e.record : e);
    wire.set(e, text);
  }
  return text;
}

export function registerEventStream(app: FastifyInstance, deps: { live: LiveHub; registry: Registry }): void {
  app.get<{ Querystring: { function?: string } }>('/events', async (req, reply) => {
    const only = req.query.function || undefined;
    if (only && !deps.registry.current(only)) throw new LaminaError('FunctionNotFound', `function "${only}" does not exist`);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      unsubscribe();
      res.end();
    };
    const unsubscribe = deps.live.subscribe((e) => {
      if (ended || (only && nameOf(e) !== only)) return;
      if (res.writableLength > MAX_BACKLOG_BYTES) return end();
      res.write(frameOf(e));
    }, end);
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    req.raw.on('close', end);
    res.on('error', end);
    res.write('retry: 2000\n' + frame('ready', { function: only ?? null }));
  });
}
