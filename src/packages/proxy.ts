// The installer's only way out: an HTTP proxy on a Unix socket that the server
// runs for one install and that lets through nothing but the package registry.
// The installer sandbox has no network of its own (an empty network namespace);
// the socket is bind-mounted into it, and the driver (driver.ts) turns it into a
// loopback TCP proxy that npm is pointed at. Supports CONNECT (https registries)
// and absolute-form requests (http registries); anything else gets 403 and is
// remembered, so a failed install can say which host it tried.
import http from 'node:http';
import net from 'node:net';
import { chmod } from 'node:fs/promises';

export interface ProxyTarget {
  host: string;
  port: number;
}

export function registryTarget(registry: string): ProxyTarget {
  const u = new URL(registry);
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  return { host: u.hostname.replace(/^\[|\]$/g, '').toLowerCase(), port };
}

export class RegistryProxy {
  /** host:port pairs that were asked for and refused. */
  readonly refused = new Set<string>();
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: http.Server) {}

  /** @param registry the one registry URL, or several allowed targets (a pip index, its file host, trusted hosts) */
  static async start(socketPath: string, registry: string | ProxyTarget[]): Promise<RegistryProxy> {
    const targets = typeof registry === 'string' ? [registryTarget(registry)] : registry;
    const allowedText = targets.map((t) => `${t.host}:${t.port}`).join(', ');
    const ok = (host: string, port: number): boolean => targets.some((t) => host.replace(/^\[|\]$/g, '').toLowerCase() === t.host && port === t.port);
    const server = http.createServer();
    const proxy = new RegistryProxy(server);
    server.on('connection', (s: net.Socket) => {
      proxy.sockets.add(s);
      s.on('close', () => proxy.sockets.delete(s));
    });
    server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(req.url ?? '');
      const host = m?.[1] ?? '';
      const port = Number(m?.[2] ?? 0);
      client.on('error', () => undefined);
      if (!m || !ok(host, port)) {
        proxy.refused.add(req.url ?? '?');
        client.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\nLamina's installer may reach only the package registry (${allowedText})\n`);
        return;
      }
      const upstream = net.connect(port, host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', (err) => {
        if (client.writable && !upstream.readable) client.end(`HTTP/1.1 502 Bad Gateway\r\n\r\n${err.message}\n`);
        else client.destroy();
      });
      client.on('close', () => upstream.destroy());
    });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      let target: URL | undefined;
      try {
        target = new URL(req.url ?? '');
      } catch {
        target = undefined;
      }
      const port = target ? (target.port ? Number(target.port) : target.protocol === 'https:' ? 443 : 80) : 0;
      if (!target || target.protocol !== 'http:' || !ok(target.hostname, port)) {
        proxy.refused.add(target ? `${target.hostname}:${port}` : String(req.url));
        res.writeHead(403, { 'content-type': 'text/plain' }).end(`Lamina's installer may reach only the package registry (${allowedText})\n`);
        return;
      }
      const headers = { ...req.headers };
      delete headers['proxy-connection'];
      delete headers['proxy-authorization'];
      const up = http.request({ host: target.hostname, port, method: req.method, path: target.pathname + target.search, headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', (err) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`${err.message}\n`);
      });
      req.pipe(up);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    // The sandbox's uid must be able to connect (connect(2) on a socket needs write permission).
    await chmod(socketPath, 0o666);
    return proxy;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
