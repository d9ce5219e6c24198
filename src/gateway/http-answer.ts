// Sends an HTTP function's checked response (src/http/response.ts): status,
// headers, every Set-Cookie as its own header, the body's bytes. For HEAD,
// Node's HTTP server sends the headers (Content-Length included) and drops the body.
import type { FastifyReply } from 'fastify';
import { bodyBytes, type HttpResponse } from '../http/response.js';

export function sendHttpResponse(reply: FastifyReply, r: HttpResponse): FastifyReply {
  reply.code(r.statusCode);
  for (const [k, v] of Object.entries(r.headers)) {
    // Lamina's own headers (request id, billing...) are set by the gateway and win.
    if (!k.startsWith('x-lamina-') && !reply.hasHeader(k)) reply.header(k, v);
  }
  if (r.cookies.length) reply.header('set-cookie', r.cookies);
  const body = bodyBytes(r);
  if (!r.headers['content-type'] && body.length > 0) reply.header('content-type', r.isBase64Encoded ? 'application/octet-stream' : 'text/plain; charset=utf-8');
  return reply.send(body);
}
