// Admin API of the package cache (registered inside the token-protected /api/v1 scope):
//   GET  /packages        entries with size and the versions using them, totals, installs in progress
//   GET  /packages/:hash  one entry with everything installed in it
//   POST /packages/gc     removes entries no stored version uses; body {"keep": "all" | "current"}
import type { FastifyInstance } from 'fastify';
import { LaminaError } from '../errors.js';
import type { Registry } from '../registry/registry.js';

export async function registerPackageRoutes(app: FastifyInstance, registry: Registry): Promise<void> {
  const cache = registry.packages;

  app.get('/packages', async () => {
    const [entries, usage, installer] = await Promise.all([cache.list(), registry.packageUsage(), cache.installer.describe()]);
    return {
      installer,
      entries: entries.map((e) => ({
        hash: e.hash,
        ecosystem: e.ecosystem,
        sizeBytes: e.sizeBytes,
        files: e.files,
        dependencies: e.dependencies,
        packages: e.packages.length,
        lockfileProvided: e.lockfileProvided,
        createdAt: e.createdAt,
        installMs: e.installMs,
        installedFor: e.installedFor,
        usedBy: usage.get(e.hash) ?? [],
      })),
      totalBytes: entries.reduce((n, e) => n + e.sizeBytes, 0),
      installing: cache.inProgress(),
    };
  });

  app.get<{ Params: { hash: string } }>('/packages/:hash', async (req) => {
    const entries = await cache.list();
    const matches = entries.filter((e) => e.hash.startsWith(req.params.hash.toLowerCase()));
    if (matches.length !== 1 || req.params.hash.length < 6) {
      throw new LaminaError('NotFound', matches.length > 1 ? `package entry prefix "${req.params.hash}" is ambiguous` : `no package entry "${req.params.hash}"`);
    }
    const e = matches[0]!;
    const { dir: _dir, nodeModules: _nm, ...rest } = e;
    return { ...rest, usedBy: (await registry.packageUsage()).get(e.hash) ?? [] };
  });

  app.post('/packages/gc', async (req) => {
    let keep = 'all';
    const body = req.body;
    if (Buffer.isBuffer(body) && body.length > 0) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        throw new LaminaError('BadRequest', 'the body must be JSON, e.g. {"keep": "current"}');
      }
      const k = (parsed as { keep?: unknown } | null)?.keep;
      if (k !== undefined && k !== 'all' && k !== 'current') throw new LaminaError('BadRequest', `"keep" must be "all" (entries any stored version uses) or "current" (entries current versions use); got ${JSON.stringify(k)}`);
      if (typeof k === 'string') keep = k;
    }
    const usage = await registry.packageUsage();
    const used = new Set([...usage].filter(([, versions]) => keep === 'all' || versions.some((v) => v.current)).map(([hash]) => hash));
    return { keep, ...(await cache.gc(used)) };
  });
}
