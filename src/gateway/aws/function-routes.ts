// CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions,
// UpdateFunctionCode, UpdateFunctionConfiguration, DeleteFunction.
import type { FastifyInstance } from 'fastify';
import type { FunctionVersion } from '../../registry/types.js';
import { LATEST_VERSION } from '../../versions/store.js';
import { deployZip, zipBytes } from './code.js';
import { conflict, invalidParameter, notFound } from './errors.js';
import { jsonBody, optEnv, optInt, optString, requireAdmin } from './request.js';
import { functionConfiguration, handlerOf, laminaRuntime, parseFunctionRef } from './shapes.js';
import type { AwsDeps } from './types.js';

type Named = { Params: { fn: string }; Querystring: { Qualifier?: string } };

/** The version a GetFunction-style request names, with its label ($LATEST or the number). */
export async function versionFor(deps: AwsDeps, ref: string, qualifierParam?: string): Promise<{ fv: FunctionVersion; label: string; description?: string }> {
  const { name, qualifier: inName } = parseFunctionRef(ref);
  if (inName !== undefined && qualifierParam !== undefined && inName !== qualifierParam) throw invalidParameter(`the qualifier in the function name (${inName}) and the Qualifier parameter (${qualifierParam}) differ`);
  const qualifier = inName ?? qualifierParam;
  const current = deps.registry.current(name);
  if (!current) throw notFound(`Function not found: ${name}`);
  if (qualifier === undefined || qualifier === '$LATEST') return { fv: current, label: '$LATEST' };
  let version: number;
  if (/^\d+$/.test(qualifier)) version = Number(qualifier);
  else {
    const a = await deps.versions.getAlias(name, qualifier);
    if (!a) throw notFound(`Function not found: ${name}:${qualifier}`);
    if (a.version === LATEST_VERSION) return { fv: current, label: '$LATEST' };
    version = a.version;
  }
  const fv = version === current.version ? current : await deps.registry.getVersion(name, version);
  if (!fv) throw notFound(`Function not found: ${name}:${qualifier}`);
  const published = (await deps.versions.published(name)).find((p) => p.version === version);
  return { fv, label: String(version), description: published?.description };
}

const MAX_ITEMS = 10000;

export function registerFunctionRoutes(app: FastifyInstance, deps: AwsDeps): void {
  const codeLimit = Math.ceil(deps.deployLimitBytes * 1.4) + 64 * 1024; // base64 in JSON

  app.post('/functions', { bodyLimit: codeLimit }, async (req, reply) => {
    const c = requireAdmin(req);
    const body = jsonBody(req);
    const ref = optString(body, 'FunctionName');
    if (!ref) throw invalidParameter('FunctionName is required');
    const { name, qualifier } = parseFunctionRef(ref);
    if (qualifier !== undefined) throw invalidParameter('FunctionName of CreateFunction cannot carry a qualifier');
    if (deps.registry.current(name)) throw conflict(`Function already exist: ${name}`);
    const runtime = optString(body, 'Runtime');
    if (!runtime) throw invalidParameter('Runtime is required (nodejs18.x, nodejs20.x, nodejs22.x or python3.x)');
    laminaRuntime(runtime);
    const handler = optString(body, 'Handler');
    if ((optString(body, 'PackageType') ?? 'Zip') !== 'Zip') throw invalidParameter('only PackageType Zip is supported');
    const code = (body.Code ?? {}) as Record<string, unknown>;
    const zip = zipBytes(code.ZipFile, 'Code.ZipFile');
    const memoryMb = optInt(body, 'MemorySize', 128, 10240);
    const timeoutS = optInt(body, 'Timeout', 1, 900);
    const fv = await deployZip(deps, name, zip, {
      runtime,
      handler,
      memoryMb: memoryMb ?? 128,
      timeoutMs: (timeoutS ?? 3) * 1000,
      env: optEnv(body) ?? {},
    });
    await deps.versions.setAwsSettings(name, { role: optString(body, 'Role') ?? '', description: optString(body, 'Description') ?? '', runtime, handler: handler ?? '' });
    const settings = await deps.versions.awsSettings(name);
    if (body.Publish === true) {
      const p = await deps.versions.publish(name, settings.description);
      return reply.code(201).send(functionConfiguration(fv, settings, String(p.version), c.region, p.description));
    }
    return reply.code(201).send(functionConfiguration(fv, settings, '$LATEST', c.region));
  });

  app.get<{ Querystring: { Marker?: string; MaxItems?: string; FunctionVersion?: string } }>('/functions', async (req) => {
    const c = requireAdmin(req);
    const max = req.query.MaxItems === undefined ? 50 : Number(req.query.MaxItems);
    if (!Number.isInteger(max) || max < 1 || max > MAX_ITEMS) throw invalidParameter(`MaxItems must be an integer from 1 to ${MAX_ITEMS}`);
    const start = req.query.Marker === undefined || req.query.Marker === '' ? 0 : Number(req.query.Marker);
    if (!Number.isInteger(start) || start < 0) throw invalidParameter('Marker is not one this API gave');
    const all = req.query.FunctionVersion === 'ALL';
    if (req.query.FunctionVersion !== undefined && !all) throw invalidParameter('FunctionVersion must be ALL');
    const names = deps.registry.list().map((f) => f.name);
    const out: unknown[] = [];
    for (const name of names) {
      const fv = deps.registry.current(name);
      if (!fv) continue;
      const s = await deps.versions.awsSettings(name);
      out.push(functionConfiguration(fv, s, '$LATEST', c.region));
      if (all) {
        for (const p of await deps.versions.published(name)) {
          const pv = p.version === fv.version ? fv : await deps.registry.getVersion(name, p.version);
          if (pv) out.push(functionConfiguration(pv, s, String(p.version), c.region, p.description));
        }
      }
    }
    const page = out.slice(start, start + max);
    return { Functions: page, ...(start + max < out.length ? { NextMarker: String(start + max) } : {}) };
  });

  app.get<Named>('/functions/:fn', async (req) => {
    const c = requireAdmin(req);
    const { fv, label, description } = await versionFor(deps, req.params.fn, req.query.Qualifier);
    const s = await deps.versions.awsSettings(fv.name);
    return { Configuration: functionConfiguration(fv, s, label, c.region, description), Code: { RepositoryType: 'Lamina' }, Tags: {} };
  });

  app.get<Named>('/functions/:fn/configuration', async (req) => {
    const c = requireAdmin(req);
    const { fv, label, description } = await versionFor(deps, req.params.fn, req.query.Qualifier);
    return functionConfiguration(fv, await deps.versions.awsSettings(fv.name), label, c.region, description);
  });

  app.put<Named>('/functions/:fn/code', { bodyLimit: codeLimit }, async (req) => {
    const c = requireAdmin(req);
    const { name, qualifier } = parseFunctionRef(req.params.fn);
    if (qualifier !== undefined) throw invalidParameter('UpdateFunctionCode takes an unqualified function name');
    const current = deps.registry.current(name);
    if (!current) throw notFound(`Function not found: ${name}`);
    const body = jsonBody(req);
    const zip = zipBytes(body.ZipFile, 'ZipFile');
    const s = await deps.versions.awsSettings(name);
    const fv = body.DryRun === true ? current : await deployZip(deps, name, zip, {}, current.manifest);
    if (body.Publish === true) {
      const p = await deps.versions.publish(name, s.description);
      return functionConfiguration(fv, s, String(p.version), c.region, p.description);
    }
    return functionConfiguration(fv, s, '$LATEST', c.region);
  });

  app.put<Named>('/functions/:fn/configuration', async (req) => {
    const c = requireAdmin(req);
    const { name, qualifier } = parseFunctionRef(req.params.fn);
    if (qualifier !== undefined) throw invalidParameter('UpdateFunctionConfiguration takes an unqualified function name');
    const current = deps.registry.current(name);
    if (!current) throw notFound(`Function not found: ${name}`);
    const body = jsonBody(req);
    const s = await deps.versions.awsSettings(name);
    const runtime = optString(body, 'Runtime');
    if (runtime !== undefined && laminaRuntime(runtime) !== current.manifest.runtime) throw invalidParameter(`changing the runtime family needs new code: call UpdateFunctionCode with a ${runtime} archive`);
    const handler = optString(body, 'Handler');
    if (handler !== undefined && handler.replace(/\./g, '/') !== handlerOf(current.manifest).replace(/\./g, '/')) {
      throw invalidParameter(`Lamina compiles the handler into the function's code, so Handler cannot change without new code: name "entry" and "handler" in the archive's lamina.json and call UpdateFunctionCode`);
    }
    const memoryMb = optInt(body, 'MemorySize', 128, 10240);
    const timeoutS = optInt(body, 'Timeout', 1, 900);
    const env = optEnv(body);
    let fv = current;
    const m = current.manifest;
    const changes = memoryMb !== undefined && memoryMb !== m.memoryMb || timeoutS !== undefined && timeoutS * 1000 !== m.timeoutMs || env !== undefined && JSON.stringify(env) !== JSON.stringify(m.env);
    if (changes) {
      fv = await deps.registry.redeploy(name, current.version, (x) => ({
        ...x,
        ...(memoryMb !== undefined ? { memoryMb } : {}),
        ...(timeoutS !== undefined ? { timeoutMs: timeoutS * 1000 } : {}),
        ...(env !== undefined ? { env } : {}),
      }), { validate: deps.checkManifest });
    }
    await deps.versions.setAwsSettings(name, { role: optString(body, 'Role'), description: optString(body, 'Description'), runtime });
    return functionConfiguration(fv, await deps.versions.awsSettings(name), '$LATEST', c.region);
  });

  app.delete<Named>('/functions/:fn', async (req, reply) => {
    requireAdmin(req);
    const { name, qualifier: inName } = parseFunctionRef(req.params.fn);
    const qualifier = inName ?? req.query.Qualifier;
    const current = deps.registry.current(name);
    if (!current) throw notFound(`Function not found: ${name}`);
    if (qualifier === undefined || qualifier === '$LATEST') {
      await deps.registry.remove(name);
      await deps.versions.forget(name);
      return reply.code(204).send();
    }
    if (!/^\d+$/.test(qualifier)) throw invalidParameter('Qualifier of DeleteFunction must be a version number (delete aliases with DeleteAlias)');
    const version = Number(qualifier);
    if (!(await deps.versions.published(name)).some((p) => p.version === version)) throw notFound(`Function not found: ${name}:${qualifier}`);
    const users = (await deps.versions.listAliases(name, version)).map((a) => a.alias);
    if (users.length) throw conflict(`version ${version} is used by the alias(es) ${users.join(', ')}`);
    await deps.versions.unpublish(name, version);
    return reply.code(204).send();
  });
}
