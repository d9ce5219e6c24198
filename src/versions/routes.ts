// Admin API for releases: publish, aliases (with a canary weight) and rollback,
// under /api/v1/functions/:name (behind the admin token, like the rest of /api/v1).
import type { FastifyInstance } from 'fastify';
import { LaminaError } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import { LATEST_VERSION, type Alias, type VersionStore } from './store.js';

type P = { Params: { name: string } };
type PA = { Params: { name: string; alias: string } };

function body(raw: unknown): Record<string, unknown> {
  if (!Buffer.isBuffer(raw) || raw.length === 0) return {};
  try {
    const v = JSON.parse(raw.toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* below */
  }
  throw new LaminaError('BadRequest', 'the request body must be a JSON object');
}

function versionField(v: unknown, field: string): number {
  if (v === '$LATEST' || v === 'latest') return LATEST_VERSION;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new LaminaError('BadRequest', `"${field}" must be a version number or "$LATEST" (got ${JSON.stringify(v)})`);
  return n;
}

function view(a: Alias) {
  return { alias: a.alias, version: a.version === LATEST_VERSION ? '$LATEST' : a.version, extraVersion: a.extraVersion, extraWeight: a.extraWeight, description: a.description, revisionId: a.revisionId, updatedAt: a.updatedAt };
}

export function registerReleaseRoutes(app: FastifyInstance, registry: Registry, versions: VersionStore): void {
  app.post<P>('/functions/:name/publish', async (req, reply) => {
    const b = body(req.body);
    const description = b.description === undefined ? '' : String(b.description);
    return reply.code(201).send(await versions.publish(req.params.name, description));
  });

  app.get<P>('/functions/:name/aliases', async (req) => {
    if (!registry.current(req.params.name)) throw new LaminaError('FunctionNotFound', `function "${req.params.name}" does not exist`);
    return { published: await versions.published(req.params.name), aliases: (await versions.listAliases(req.params.name)).map(view) };
  });

  // PUT creates or replaces: {"version": 3, "extraVersion": 4, "extraWeight": 0.1, "description": "..."}
  app.put<PA>('/functions/:name/aliases/:alias', async (req, reply) => {
    const b = body(req.body);
    const input = {
      version: versionField(b.version, 'version'),
      extraVersion: b.extraVersion === undefined || b.extraVersion === null ? null : versionField(b.extraVersion, 'extraVersion'),
      extraWeight: b.extraWeight === undefined || b.extraWeight === null ? null : Number(b.extraWeight),
      ...(b.description !== undefined ? { description: String(b.description) } : {}),
    };
    const exists = await versions.getAlias(req.params.name, req.params.alias);
    const a = exists ? await versions.updateAlias(req.params.name, req.params.alias, input) : await versions.createAlias(req.params.name, req.params.alias, input);
    return reply.code(exists ? 200 : 201).send(view(a));
  });

  app.delete<PA>('/functions/:name/aliases/:alias', async (req) => {
    if (!(await versions.deleteAlias(req.params.name, req.params.alias))) throw new LaminaError('NotFound', `function "${req.params.name}" has no alias "${req.params.alias}"`);
    return { deleted: req.params.alias };
  });

  // {"version": N} or {} for the version before the current one; answers the new current version.
  app.post<P>('/functions/:name/rollback', async (req, reply) => {
    const name = req.params.name;
    const d = await registry.describe(name);
    if (!d) throw new LaminaError('FunctionNotFound', `function "${name}" does not exist`);
    const b = body(req.body);
    let target: number;
    if (b.version === undefined) {
      const older = d.versions.map((v) => v.version).filter((v) => v < d.current.version);
      if (older.length === 0) throw new LaminaError('BadRequest', `function "${name}" has no version before ${d.current.version} to roll back to`);
      target = Math.max(...older);
    } else target = versionField(b.version, 'version');
    if (target === LATEST_VERSION || target === d.current.version) throw new LaminaError('BadRequest', `version ${d.current.version} is already current`);
    const fv = await registry.redeploy(name, target);
    return reply.code(201).send({ name, version: fv.version, from: target, rolledBackTo: target, codeHash: fv.codeHash, createdAt: fv.createdAt });
  });
}
