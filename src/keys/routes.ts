// Admin API of invoke keys (registered inside the token-protected /api/v1 scope):
//   POST   /keys      {"functions": ["a", "b"]} or ["*"]  -> 201 {id, key, functions, createdAt} (the key shown once)
//   GET    /keys      {keys: [{id, functions, createdAt}]}
//   DELETE /keys/:id  204; 404 when there is no such key
import type { FastifyInstance } from 'fastify';
import { LaminaError } from '../errors.js';
import { isValidFunctionName } from '../registry/manifest.js';
import type { KeyStore } from './store.js';

const MAX_FUNCTIONS = 1000;

function parseFunctions(body: unknown): string[] {
  let parsed: unknown;
  try {
    parsed = Buffer.isBuffer(body) && body.length ? JSON.parse(body.toString('utf8')) : undefined;
  } catch (err) {
    throw new LaminaError('BadRequest', `the request body is not valid JSON: ${(err as Error).message}`);
  }
  const fns = (parsed as { functions?: unknown } | undefined)?.functions;
  const rule = 'the body must be {"functions": [...]} with 1 to 1000 function names, or ["*"] for every function';
  if (!Array.isArray(fns) || fns.length === 0 || fns.length > MAX_FUNCTIONS) throw new LaminaError('BadRequest', rule);
  for (const f of fns) {
    if (typeof f !== 'string' || (f !== '*' && !isValidFunctionName(f))) throw new LaminaError('BadRequest', `${JSON.stringify(f)} is not a function name (${rule})`);
  }
  if (fns.includes('*') && fns.length > 1) throw new LaminaError('BadRequest', '"*" already means every function: give it alone');
  return fns as string[];
}

export async function registerKeyRoutes(app: FastifyInstance, keys: KeyStore): Promise<void> {
  app.post('/keys', async (req, reply) => reply.code(201).send(await keys.create(parseFunctions(req.body))));
  app.get('/keys', async () => ({ keys: await keys.list() }));
  app.delete<{ Params: { id: string } }>('/keys/:id', async (req, reply) => {
    if (!(await keys.remove(req.params.id))) throw new LaminaError('NotFound', `no invoke key "${req.params.id}"`);
    return reply.code(204).send();
  });
}
