// `lamina worker`: one worker of a cluster. The same Worker, sandboxes and
// metering as `lamina up`, behind the internal API of protocol.ts instead of
// the public one. Its registry is a read-only mirror of the shared database
// (kept current by notices, by the version each call names, and by a periodic
// refresh); code comes from the shared store by hash on first use; invocation
// records go straight to the shared database. The agent registers it with the
// gateways and heartbeats.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import pino from 'pino';
import type { ServerConfig } from '../config.js';
import { newRequestId } from '../util/request-id.js';
import { LaminaError, isLaminaError } from '../errors.js';
import type { HttpCall } from '../http/call.js';
import { parseJsonBody } from '../http/json-body.js';
import { InvocationStore } from '../metering/store.js';
import { InvocationPruner, invocationRetentionMs } from '../metering/retention.js';
import { Registry } from '../registry/registry.js';
import type { FunctionVersion } from '../registry/types.js';
import { SandboxProvider } from '../sandbox/provider.js';
import { openPostgres } from '../store/postgres.js';
import { Worker, workerOptions } from '../worker/worker.js';
import type { InvokeOptions, InvocationTrigger } from '../worker/invoke-options.js';
import { Agent } from './agent.js';
import { CodeCache } from './code.js';
import { startTriggers } from '../triggers/node.js';
import { AsyncQueue } from '../triggers/queue.js';
import { ASYNC_CHANNEL, PgListener, REGISTRY_CHANNEL } from './notify.js';
import { loadClusterTls, type ClusterTlsConfig } from './tls.js';
import { ACCEPTED_HEADER, CALL_CONTENT_TYPE, INTERNAL_PREFIX, PINNED_HEADER, REFUSED_HEADER, TRIGGER_HEADER, decodeCall, secretMatches, type InvokeEnvelope, type WorkerReport } from './protocol.js';

/** The triggers a gateway may name for a forwarded call (InvokeOptions.trigger). */
const TRIGGERS = new Set<string>(['http', 'event', 'schedule', 'aws']);

export interface WorkerNodeConfig extends ServerConfig {
  gatewayUrl: string;
  databaseUrl: string;
  /** The URL gateways use to reach this worker (default: from --host and the port). */
  advertiseUrl: string | undefined;
  clusterSecret: string;
  heartbeatMs: number;
  /** Full registry refresh period, as a safety net under notices. */
  refreshMs: number;
  /** TLS with the gateways: serve HTTPS with a certificate, trust a CA when calling them (cluster/tls.ts). */
  tls?: ClusterTlsConfig;
}

export interface RunningWorkerNode {
  url: string;
  id: string;
  tier: string;
  tierReason: string;
  /** Deregisters, finishes the calls in flight, stops every sandbox. */
  close(): Promise<void>;
}

/** The first non-internal IPv4 address, for a worker bound to 0.0.0.0 with no --advertise. */
function outwardAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: http.ServerResponse, err: LaminaError, headers: Record<string, string> = {}): void {
  send(res, err.status, { error: { type: err.type, message: err.message, extra: err.extra } }, headers);
}

/** A function name from the path; bad percent-encoding is the caller's error (400), not the worker's. */
function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new LaminaError('BadRequest', `the function name in the path is not valid percent-encoding`);
  }
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new LaminaError('PayloadTooLarge', `the request body exceeds ${limit} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('aborted')));
  });
}

export async function startWorkerNode(config: WorkerNodeConfig): Promise<RunningWorkerNode> {
  const log = pino({ level: process.env.LAMINA_LOG_LEVEL ?? 'info', base: undefined }, pino.destination(2));
  const tls = loadClusterTls(config.tls);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const id = config.workerId;
  const boot = randomBytes(8).toString('hex');

  const db = await openPostgres(config.databaseUrl, { applicationName: `lamina-worker ${id}` });
  const cleanups: (() => Promise<unknown>)[] = [() => db.close()];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch((err) => log.warn(`shutdown: ${(err as Error).message}`));
    cleanups.length = 0;
  };
  try {
    const code = new CodeCache(db, config.dataDir);
    await code.init();
    const registry = await Registry.open(db, config.dataDir);
    const sandboxes = await SandboxProvider.create({ tier: config.sandbox, poolSize: config.poolSize, log: (m) => log.warn(m) });
    cleanups.push(() => sandboxes.close());
    const chosen = sandboxes.tiers.find((t) => t.tier === sandboxes.defaultTier)!;
    const invocations = new InvocationStore(db, config.prices, config.billingGranularityMs, (m) => log.error(m));
    cleanups.push(() => invocations.close());
    const worker = new Worker(registry, sandboxes, invocations, workerOptions(config, id));
    cleanups.push(() => worker.shutdown());

    // A new version of a function warm here is fetched before it becomes current, so the switch costs no fetch on the hot path.
    const warmHere = (name: string) => worker.stats().functions.some((f) => f.name === name);
    const fetchVersion = async (fv: FunctionVersion) => {
      if (fv.packagesHash) await code.ensurePackages(fv.packagesHash);
      await code.ensure(fv.codeHash);
    };
    /** A stored version that is not current (a pinned call), its code fetched here; undefined if there is no such version. */
    const storedVersion = async (name: string, version: number): Promise<FunctionVersion | undefined> => {
      const stored = await registry.getVersion(name, version);
      if (stored) await fetchVersion(stored);
      return stored;
    };
    const prepare = (also?: string) => async (fv: FunctionVersion) => {
      if (fv.name === also || warmHere(fv.name)) await fetchVersion(fv);
    };
    const asyncQueue = new AsyncQueue(db);
    const listener = new PgListener(
      config.databaseUrl,
      [REGISTRY_CHANNEL, ASYNC_CHANNEL],
      (channel, name) => {
        if (channel === ASYNC_CHANNEL) return void asyncQueue.emit('enqueued', name);
        void registry.refresh([name], { prepare: prepare() }).catch((err) => log.warn(`registry refresh of ${name} failed: ${(err as Error).message}`));
      },
      () => void registry.refresh(undefined, { prepare: prepare() }).catch(() => undefined),
      (m) => log.warn(m),
    );
    await listener.start();
    cleanups.push(() => listener.stop());
    const refresher = setInterval(() => void registry.refresh(undefined, { prepare: prepare() }).catch((err) => log.warn(`registry refresh failed: ${(err as Error).message}`)), config.refreshMs);
    refresher.unref();
    cleanups.push(async () => clearInterval(refresher));

    let inflight = 0;
    let served = 0;
    let stopping = false;
    let idle: (() => void) | undefined;
    const report = (): WorkerReport => ({ ...worker.stats(), inflight, served, stopping });
    const bodyLimit = config.payloadLimitBytes * 2 + 1024 * 1024; // the gateway enforced the real limit

    // The event loop's pulse. A request first seen after the loop stood still long enough for the
    // gateways to miss heartbeats up to their timeout (the process was stopped, starved or swapped) may
    // have waited in the kernel while its gateway declared this worker down and sent the call elsewhere:
    // it is refused, untouched. Connections queued meanwhile are accepted and read over the next loop
    // iterations, so "recently" means: until 500 ms after the stall ended.
    let agent: Agent | undefined;
    const stallLimit = () => Math.max(300, (agent?.timeoutMs ?? 3 * config.heartbeatMs) - config.heartbeatMs);
    let lastTick = Date.now();
    let stallEndedAt = 0;
    const pulse = setInterval(() => {
      const now = Date.now();
      if (now - lastTick > stallLimit()) {
        stallEndedAt = now;
        log.warn(`the event loop stood still for ${now - lastTick} ms; refusing the calls that waited meanwhile`);
      }
      lastTick = now;
    }, 100);
    pulse.unref();
    cleanups.push(async () => clearInterval(pulse));

    const invoke = async (req: http.IncomingMessage, res: http.ServerResponse, name: string) => {
      const refuse = () => sendError(res, new LaminaError('ServiceUnavailable', `worker "${id}" is stopping`), { [REFUSED_HEADER]: 'stopping' });
      if (stopping) return refuse();
      const now = Date.now();
      if (now - lastTick > stallLimit() || now - stallEndedAt < 500) {
        return sendError(res, new LaminaError('ServiceUnavailable', `worker "${id}" has just been stalled`), { [REFUSED_HEADER]: 'stalled' });
      }
      const body = await readBody(req, bodyLimit);
      const requestId = String(req.headers['x-lamina-request-id'] ?? '') || newRequestId();
      const want = Number(req.headers['x-lamina-version'] ?? 0) || 0;
      const pinHeader = req.headers[PINNED_HEADER];
      const pin = pinHeader === undefined ? undefined : Number(pinHeader);
      if (pin !== undefined && !(Number.isSafeInteger(pin) && pin > 0)) return sendError(res, new LaminaError('BadRequest', `${PINNED_HEADER} must be a version number`));
      const triggerHeader = req.headers[TRIGGER_HEADER];
      if (triggerHeader !== undefined && !TRIGGERS.has(String(triggerHeader))) return sendError(res, new LaminaError('BadRequest', `${TRIGGER_HEADER} must be one of ${[...TRIGGERS].join(', ')}`));
      const trigger = triggerHeader === undefined ? undefined : (String(triggerHeader) as InvocationTrigger);
      let event: unknown;
      let call: HttpCall | undefined;
      if (String(req.headers['content-type'] ?? '').startsWith(CALL_CONTENT_TYPE)) {
        try {
          call = decodeCall(body);
        } catch (err) {
          return sendError(res, new LaminaError('BadRequest', `the forwarded request is malformed: ${(err as Error).message}`));
        }
      } else {
        try {
          event = body.length ? JSON.parse(body.toString('utf8')) : {};
        } catch (err) {
          return sendError(res, new LaminaError('BadRequest', `the event is not valid JSON: ${(err as Error).message}`));
        }
      }
      // Catch up with a deploy the gateway has seen and this worker has not yet heard of.
      let fv = registry.current(name);
      if (!fv || fv.version < want) {
        await registry.refresh([name], { prepare: prepare(name) });
        fv = registry.current(name);
      }
      for (let i = 0; fv; i++) {
        try {
          await fetchVersion(fv);
        } catch (err) {
          return sendError(res, new LaminaError('InternalError', `worker "${id}" cannot get the code of ${fv.name} version ${fv.version}: ${(err as Error).message}`));
        }
        const cur = registry.current(name);
        if (!cur || cur.codeHash === fv.codeHash || i >= 3) {
          fv = cur;
          break;
        }
        fv = cur; // a newer version arrived meanwhile: make sure its code is here too
      }
      if (!fv) return sendError(res, new LaminaError('FunctionNotFound', `function "${name}" does not exist`));
      if (pin !== undefined && pin !== fv.version) {
        // A stored version (name:3, an alias): its code is fetched here like a current one's.
        let stored: FunctionVersion | undefined;
        try {
          stored = await storedVersion(name, pin);
        } catch (err) {
          return sendError(res, new LaminaError('InternalError', `worker "${id}" cannot get the code of ${name} version ${pin}: ${(err as Error).message}`));
        }
        if (!stored) return sendError(res, new LaminaError('FunctionNotFound', `function "${name}" has no version ${pin}`));
        fv = stored;
      }
      if (call && !call.jsonError && (fv.manifest.http.event ?? 'json') === 'json') {
        // json mode: the event is the body's JSON (the gateway checked it; it forwards bytes, not a second copy).
        const parsed = parseJsonBody(call.body);
        if ('event' in parsed) event = parsed.event;
        else call.jsonError = parsed.jsonError;
      }
      if (stopping) return refuse();
      // Let pending socket events arrive (a worker resumed after a pause may hold the gateway's hang-up
      // unread): a gateway that gave up before the call started may already be running it elsewhere.
      // Gateways never half-close a connection: a FIN (readableEnded) before the call started means it gave up.
      await new Promise((r) => setImmediate(r));
      if (stopping) return refuse();
      if (res.destroyed || req.socket.destroyed || req.socket.readableEnded) {
        req.socket.destroy();
        return;
      }

      // Accepted: the headers go out before the call starts (see protocol.ts).
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', [ACCEPTED_HEADER]: '1' });
      res.flushHeaders();
      inflight++;
      served++;
      let envelope: InvokeEnvelope;
      try {
        const opts: InvokeOptions = { ...(call ? { http: call } : {}), ...(pin !== undefined ? { version: pin } : {}), ...(trigger ? { trigger } : {}) };
        envelope = { result: await worker.invoke(name, requestId, event, opts) };
      } catch (err) {
        const le = isLaminaError(err) ? err : new LaminaError('InternalError', (err as Error).message);
        if (le.type === 'InternalError') log.error({ err }, 'invoke failed');
        envelope = { error: { type: le.type, message: le.message, extra: le.extra } };
      } finally {
        inflight--;
        if (inflight === 0) idle?.();
      }
      res.end(JSON.stringify(envelope));
    };

    const serverOptions = { keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 };
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const url = req.url ?? '/';
      const handle = async () => {
        if (url === '/healthz' && req.method === 'GET') return send(res, 200, { status: stopping ? 'stopping' : 'ok', worker: id, boot, tier: sandboxes.defaultTier });
        if (!url.startsWith(`${INTERNAL_PREFIX}/`)) return sendError(res, new LaminaError('NotFound', `no route for ${req.method} ${url.split('?')[0]}`));
        if (!secretMatches(req.headers.authorization, config.clusterSecret)) return sendError(res, new LaminaError('Unauthorized', 'the cluster secret is required'));
        const route = url.slice(INTERNAL_PREFIX.length).split('?')[0]!;
        const m = /^\/invoke\/([^/]+)$/.exec(route);
        if (m && req.method === 'POST') return invoke(req, res, decodeName(m[1]!));
        if (route === '/flush' && req.method === 'POST') {
          await invocations.flush();
          return send(res, 200, { flushed: true });
        }
        if (route === '/ping' && req.method === 'GET') return send(res, 200, { id, boot });
        const inst = /^\/instances\/([^/]+)$/.exec(route);
        if (inst && req.method === 'GET') return send(res, 200, { instances: await worker.instances(decodeName(inst[1]!)) });
        if (route === '/stats' && req.method === 'GET') return send(res, 200, report());
        return sendError(res, new LaminaError('NotFound', `no route for ${req.method} ${url.split('?')[0]}`));
      };
      handle().catch((err) => {
        const le = isLaminaError(err) ? err : new LaminaError('InternalError', (err as Error).message);
        if (res.headersSent) res.destroy();
        else sendError(res, le);
      });
    };
    const server = tls.server ? https.createServer({ ...serverOptions, ...tls.server }, handler) : http.createServer(serverOptions, handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.port;
    const host = config.host === '0.0.0.0' || config.host === '::' ? outwardAddress() : config.host;
    const url = `${tls.server ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const advertised = (config.advertiseUrl ?? url).replace(/\/+$/, '');

    // Async events of the shared queue run here too (any worker may run any event; warm functions first).
    // Leases that stop being renewed (a dead worker) are taken over by the others.
    const triggers = await startTriggers({
      db,
      queue: asyncQueue,
      catalog: registry,
      workerId: id,
      invoke: async (name, requestId, event, opts) => {
        let fv = registry.current(name);
        if (!fv) {
          await registry.refresh([name], { prepare: prepare(name) });
          fv = registry.current(name);
        }
        if (!fv) throw new LaminaError('FunctionNotFound', `function "${name}" does not exist`);
        await fetchVersion(fv);
        // An event pinned to a stored version (async.md) runs that one: its code must be here too.
        if (opts.version !== undefined && opts.version !== fv.version && !(await storedVersion(name, opts.version))) {
          throw new LaminaError('FunctionNotFound', `function "${name}" has no version ${opts.version}`);
        }
        const result = await worker.invoke(name, requestId, event, opts);
        // The metering record is written before the queue says the event ended, so a gateway never shows one without the other.
        await invocations.flush();
        return result;
      },
      warm: () => worker.stats().functions.map((f) => f.name),
      recoverAll: false,
      log: (m) => log.warn(m),
    });
    cleanups.push(() => triggers.stop());
    // Every worker prunes records past the window; each record is rolled into its day once (retention.ts).
    const pruner = new InvocationPruner(db, invocationRetentionMs(), (m) => log.warn(m), () => invocations.flush());
    pruner.start();
    cleanups.push(() => pruner.stop());

    agent = new Agent({
      gatewayUrl: config.gatewayUrl.replace(/\/+$/, ''),
      secret: config.clusterSecret,
      id,
      url: advertised,
      boot,
      info: { tiers: sandboxes.tiers.filter((t) => t.ok).map((t) => t.tier), defaultTier: sandboxes.defaultTier, version: '0.1.0', pid: process.pid, host: os.hostname() },
      heartbeatMs: config.heartbeatMs,
      dispatcher: tls.dispatcher,
      report,
      log: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
    });
    agent.start();

    const shutdown = async () => {
      stopping = true;
      // Gateways stop routing here; a call that still arrives is refused untouched (they send it elsewhere).
      await agent.deregister();
      if (inflight > 0) await new Promise<void>((resolve) => (idle = resolve));
      await cleanup();
    };
    let closing: Promise<void> | undefined;
    return { url: advertised, id, tier: chosen.tier, tierReason: chosen.reason, close: () => (closing ??= shutdown()) };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
