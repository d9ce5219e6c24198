// PublishVersion, ListVersionsByFunction and the alias operations.
import type { FastifyInstance } from 'fastify';
import type { AliasInput } from '../../versions/store.js';
import { AwsError, conflict, invalidParameter, notFound } from './errors.js';
import { jsonBody, optString, parseVersionField, requireAdmin } from './request.js';
import { aliasConfiguration, functionConfiguration, parseFunctionRef } from './shapes.js';
import type { AwsDeps } from './types.js';

type Fn = { Params: { fn: string } };
type FnAlias = { Params: { fn: string; alias: string } };

/** An unqualified function name that exists. */
function existing(deps: AwsDeps, ref: string): string {
  const { name, qualifier } = parseFunctionRef(ref);
  if (qualifier !== undefined) throw invalidParameter(`this operation takes an unqualified function name (got ${ref})`);
  if (!deps.registry.current(name)) throw notFound(`Function not found: ${name}`);
  return name;
}

/** RoutingConfig.AdditionalVersionWeights: at most one {"version": weight}. */
function routing(body: Record<string, unknown>): Pick<AliasInput, 'extraVersion' | 'extraWeight'> | undefined {
  const rc = body.RoutingConfig;
  if (rc === undefined || rc === null) return undefined;
  const weights = (rc as { AdditionalVersionWeights?: unknown }).AdditionalVersionWeights;
  if (weights === undefined || weights === null) return { extraVersion: null, extraWeight: null };
  if (typeof weights !== 'object' || Array.isArray(weights)) throw invalidParameter('RoutingConfig.AdditionalVersionWeights must map a version to a weight');
  const entries = Object.entries(weights as Record<string, unknown>);
  if (entries.length === 0) return { extraVersion: null, extraWeight: null };
  if (entries.length > 1) throw invalidParameter('RoutingConfig.AdditionalVersionWeights takes one version');
  const [v, w] = entries[0]!;
  if (typeof w !== 'number' || !(w >= 0 && w <= 1)) throw invalidParameter(`the weight of version ${v} must be a number from 0.0 to 1.0`);
  const extraVersion = parseVersionField(v, 'RoutingConfig.AdditionalVersionWeights');
  return { extraVersion, extraWeight: w };
}

export function registerVersionRoutes(app: FastifyInstance, deps: AwsDeps): void {
  app.post<Fn>('/functions/:fn/versions', async (req, reply) => {
    const c = requireAdmin(req);
    const name = existing(deps, req.params.fn);
    const body = jsonBody(req);
    const fv = deps.registry.current(name)!;
    const sha = optString(body, 'CodeSha256');
    if (sha !== undefined && sha !== Buffer.from(fv.codeHash, 'hex').toString('base64')) throw new AwsError('PreconditionFailedException', 412, `CodeSha256 ${sha} is not the current code's`);
    const s = await deps.versions.awsSettings(name);
    const p = await deps.versions.publish(name, optString(body, 'Description') ?? s.description);
    return reply.code(201).send(functionConfiguration(fv, s, String(p.version), c.region, p.description));
  });

  app.get<Fn & { Querystring: { Marker?: string; MaxItems?: string } }>('/functions/:fn/versions', async (req) => {
    const c = requireAdmin(req);
    const name = existing(deps, req.params.fn);
    const current = deps.registry.current(name)!;
    const s = await deps.versions.awsSettings(name);
    const out = [functionConfiguration(current, s, '$LATEST', c.region)];
    for (const p of await deps.versions.published(name)) {
      const fv = p.version === current.version ? current : await deps.registry.getVersion(name, p.version);
      if (fv) out.push(functionConfiguration(fv, s, String(p.version), c.region, p.description));
    }
    return { Versions: out };
  });

  app.post<Fn>('/functions/:fn/aliases', async (req, reply) => {
    const c = requireAdmin(req);
    const name = existing(deps, req.params.fn);
    const body = jsonBody(req);
    const alias = optString(body, 'Name');
    if (!alias) throw invalidParameter('Name is required');
    const version = parseVersionField(body.FunctionVersion, 'FunctionVersion');
    const a = await deps.versions.createAlias(name, alias, { version, ...routing(body), description: optString(body, 'Description') ?? '' });
    return reply.code(201).send(aliasConfiguration(a, c.region));
  });

  app.get<Fn & { Querystring: { FunctionVersion?: string } }>('/functions/:fn/aliases', async (req) => {
    const c = requireAdmin(req);
    const name = existing(deps, req.params.fn);
    const v = req.query.FunctionVersion === undefined ? undefined : parseVersionField(req.query.FunctionVersion, 'FunctionVersion');
    return { Aliases: (await deps.versions.listAliases(name, v)).map((a) => aliasConfiguration(a, c.region)) };
  });

  app.get<FnAlias>('/functions/:fn/aliases/:alias', async (req) => {
    const c = requireAdmin(req);
    const name = existing(deps, req.params.fn);
    const a = await deps.versions.getAlias(name, req.params.alias);
    if (!a) throw notFound(`Alias not found: ${name}:${req.params.alias}`);
    return aliasConfiguration(a, c.region);
  });

  app.put<FnAlias>('/functions/:fn/aliases/:alias', async (req) => {
    const c = requireAdmin(req);
    const name = existing(deps, req.params.fn);
    const body = jsonBody(req);
    const patch: Partial<AliasInput> = { ...routing(body) };
    if (body.FunctionVersion !== undefined) patch.version = parseVersionField(body.FunctionVersion, 'FunctionVersion');
    const d = optString(body, 'Description');
    if (d !== undefined) patch.description = d;
    try {
      const a = await deps.versions.updateAlias(name, req.params.alias, patch, optString(body, 'RevisionId'));
      return aliasConfiguration(a, c.region);
    } catch (err) {
      if ((err as { type?: string }).type === 'NotFound') throw notFound(`Alias not found: ${name}:${req.params.alias}`);
      if ((err as { type?: string }).type === 'Conflict') throw conflict((err as Error).message);
      throw err;
    }
  });

  app.delete<FnAlias>('/functions/:fn/aliases/:alias', async (req, reply) => {
    requireAdmin(req);
    const name = existing(deps, req.params.fn);
    if (!(await deps.versions.deleteAlias(name, req.params.alias))) throw notFound(`Alias not found: ${name}:${req.params.alias}`);
    return reply.code(204).send();
  });
}
