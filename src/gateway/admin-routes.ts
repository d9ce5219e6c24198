// The admin API under /api/v1, every route behind the bearer token.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LaminaError } from '../errors.js';
import { registerKeyRoutes } from '../keys/routes.js';
import { registerPackageRoutes } from '../packages/routes.js';
import type { FunctionVersion } from '../registry/types.js';
import { invocationView } from '../triggers/records.js';
import { registerTriggerRoutes } from '../triggers/routes.js';
import { registerReleaseRoutes } from '../versions/routes.js';
import type { GatewayDeps } from './app.js';

const MAX_LIST_LIMIT = 1000;

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time token check (hashing first makes the lengths equal). */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return !!m && timingSafeEqual(digest(m[1]!.trim()), digest(token));
}

function versionView(fv: FunctionVersion) {
  return {
    name: fv.name,
    version: fv.version,
    codeHash: fv.codeHash,
    sizeBytes: fv.sizeBytes,
    createdAt: fv.createdAt,
    manifest: fv.manifest,
  };
}

function parseLimit(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIST_LIMIT) throw new LaminaError('BadRequest', `limit must be an integer from 1 to ${MAX_LIST_LIMIT} (got "${raw}")`);
  return n;
}

function parseTime(raw: string | undefined, field: string): string | null {
  if (raw === undefined || raw === '') return null;
  const t = Date.parse(raw);
  if (Number.isNaN(t)) throw new LaminaError('BadRequest', `${field} must be an ISO 8601 time (got "${raw}")`);
  return new Date(t).toISOString();
}

export async function registerAdminRoutes(app: FastifyInstance, deps: GatewayDeps): Promise<void> {
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (!tokenMatches(req.headers.authorization, deps.token)) {
      reply.header('www-authenticate', 'Bearer realm="lamina"');
      throw new LaminaError('Unauthorized', 'a valid admin token is required (Authorization: Bearer <token>)');
    }
  });

  app.put<{ Params: { name: string } }>('/functions/:name', { bodyLimit: deps.deployLimitBytes }, async (req, reply) => {
    const body = req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) throw new LaminaError('BadRequest', 'the request body must be the function directory as a .tar.gz archive');
    const fv = await deps.registry.deployArchive(body, req.params.name, { validate: deps.checkManifest });
    // Where the node loads new versions ahead (isolates), the answer waits for it (bounded): a call right after is warm.
    await deps.worker.whenStartedAhead?.(fv.name, fv.version);
    return reply.code(201).send(versionView(fv));
  });

  // `sandbox` is the tier the function actually runs on (an `auto` manifest resolves to this node's choice).
  app.get('/functions', async () => ({ functions: deps.registry.list().map((f) => ({ ...f, sandbox: deps.tierFor?.(f) ?? f.sandbox })) }));

  app.get<{ Params: { name: string } }>('/functions/:name', async (req) => {
    const d = await deps.registry.describe(req.params.name);
    if (!d) throw new LaminaError('FunctionNotFound', `function "${req.params.name}" does not exist`);
    const live = deps.worker.stats().functions.find((f) => f.name === req.params.name);
    return { ...versionView(d.current), versions: d.versions, load: live ?? null, instances: (await deps.worker.instances?.(req.params.name)) ?? [] };
  });

  app.delete<{ Params: { name: string } }>('/functions/:name', async (req) => {
    if (!(await deps.registry.remove(req.params.name))) throw new LaminaError('FunctionNotFound', `function "${req.params.name}" does not exist`);
    return { deleted: req.params.name };
  });

  app.get<{ Querystring: { function?: string; limit?: string; status?: string } }>('/invocations', async (req) => {
    const limit = parseLimit(req.query.limit, 50);
    return { invocations: await deps.invocations.list({ function: req.query.function, limit, status: req.query.status }) };
  });

  app.get<{ Params: { requestId: string } }>('/invocations/:requestId', async (req) => {
    const rec = await invocationView(deps.invocations, deps.asyncQueue, req.params.requestId);
    if (!rec) throw new LaminaError('NotFound', `no invocation with request id "${req.params.requestId}"`);
    return rec;
  });

  app.get<{ Querystring: { function: string; limit?: string } }>('/logs', async (req) => {
    if (!req.query.function) throw new LaminaError('BadRequest', 'the function query parameter is required');
    const limit = parseLimit(req.query.limit, 20);
    return { invocations: await deps.invocations.listWithLogs({ function: req.query.function, limit }) };
  });

  app.get<{ Querystring: { since?: string; until?: string } }>('/billing', async (req) => {
    const since = parseTime(req.query.since, 'since');
    const until = parseTime(req.query.until, 'until');
    return deps.invocations.billing(since, until);
  });

  app.get('/worker', async () => deps.worker.stats());

  await registerPackageRoutes(app, deps.registry);
  await registerKeyRoutes(app, deps.keys);
  if (deps.asyncQueue) registerTriggerRoutes(app, { queue: deps.asyncQueue, catalog: deps.registry });
  if (deps.versions) registerReleaseRoutes(app, deps.registry, deps.versions);
}
