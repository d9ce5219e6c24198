// The web console: its static files under /console (built by Vite into
// dist/console at `npm run build`) and the few admin routes it needs beyond
// the contract's API (rollback, per-minute call series).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { LaminaError } from '../errors.js';
import type { InvocationStore } from '../metering/store.js';
import type { Registry } from '../registry/registry.js';
import { buildSeries } from './stats.js';

const MAX_CHART_CALLS = 100_000;

/** Where the built console lives: beside the bundled CLI (dist/console), or dist/console of the checkout when run from source. */
export function consoleDir(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const dir of [path.join(here, '..', 'console'), path.join(here, '..', '..', 'dist', 'console')]) {
    if (existsSync(path.join(dir, 'index.html'))) return dir;
  }
  return undefined;
}

// The console's scripts and styles come from this origin only; its API calls go back to it.
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

export async function registerConsolePages(app: FastifyInstance): Promise<void> {
  app.get('/', async (_req, reply) => reply.redirect('/console/'));
  const dir = consoleDir();
  if (!dir) {
    app.get('/console/*', async (_req, reply) =>
      reply.code(503).type('text/plain; charset=utf-8').send('The console is not built: run `npm run build` in the Lamina checkout.\n'),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/console/',
    // The router ignores trailing slashes, so /console and /console/ both land on the route below.
    index: false,
    wildcard: true,
    // Hashed asset names may be cached forever; index.html must always be fresh.
    cacheControl: false,
    setHeaders: (res, file) => {
      res.header('content-security-policy', CSP);
      res.header('x-content-type-options', 'nosniff');
      res.header('referrer-policy', 'no-referrer');
      res.header('cache-control', file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
  app.get('/console', async (_req, reply) => reply.sendFile('index.html'));
}

export function registerConsoleApi(app: FastifyInstance, deps: { registry: Registry; invocations: InvocationStore }): void {
  // Rollback is the releases API's (src/versions/routes.ts), which the console calls too.
  app.get<{ Params: { name: string }; Querystring: { minutes?: string } }>('/functions/:name/stats', async (req) => {
    if (!deps.registry.current(req.params.name)) throw new LaminaError('FunctionNotFound', `function "${req.params.name}" does not exist`);
    const raw = req.query.minutes ?? '60';
    const minutes = Number(raw);
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) throw new LaminaError('BadRequest', `minutes must be an integer from 1 to 1440 (got "${raw}")`);
    const until = Date.now();
    const since = until - minutes * 60_000;
    const calls = await deps.invocations.timings(req.params.name, new Date(since).toISOString(), MAX_CHART_CALLS);
    return { function: req.params.name, bucketSeconds: 60, buckets: buildSeries(calls, since, until, 60_000) };
  });
}
