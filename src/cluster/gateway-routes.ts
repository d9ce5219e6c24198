// Routes a gateway adds in cluster mode, beside the contract's API:
//   /internal/v1/workers/{register,heartbeat,deregister}  for workers (cluster secret)
//   GET  /api/v1/workers                                  membership, loads, warm functions (admin token)
//   POST /api/v1/workers/:id/drain | /resume              stop / restart routing new calls to a worker (admin token)
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LaminaError } from '../errors.js';
import { tokenMatches } from '../gateway/admin-routes.js';
import type { Membership } from './membership.js';
import { INTERNAL_PREFIX, secretMatches, type HeartbeatRequest, type RegisterRequest } from './protocol.js';

export interface ClusterRouteDeps {
  members: Membership;
  token: string;
  secret: string;
  gatewayId: string;
}

function jsonBody<T>(req: FastifyRequest): T {
  const raw = req.body;
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : typeof raw === 'string' ? raw : '';
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new LaminaError('BadRequest', 'the request body must be JSON');
  }
}

function need(cond: unknown, what: string): void {
  if (!cond) throw new LaminaError('BadRequest', `${what} is required`);
}

function checkUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new LaminaError('BadRequest', `url "${url}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new LaminaError('BadRequest', `url "${url}" must be http(s)`);
}

export async function registerClusterRoutes(app: FastifyInstance, deps: ClusterRouteDeps): Promise<void> {
  const { members } = deps;

  await app.register(
    async (internal) => {
      internal.addHook('onRequest', async (req: FastifyRequest) => {
        if (!secretMatches(req.headers.authorization, deps.secret)) throw new LaminaError('Unauthorized', 'the cluster secret is required (Authorization: Bearer <LAMINA_CLUSTER_SECRET>)');
      });
      internal.post('/register', async (req) => {
        const r = jsonBody<RegisterRequest>(req);
        need(typeof r.id === 'string' && /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(r.id), 'id (letters, digits, . _ : -)');
        need(typeof r.url === 'string', 'url');
        need(typeof r.boot === 'string' && r.boot, 'boot');
        checkUrl(r.url);
        return members.register(r);
      });
      internal.post('/heartbeat', async (req, reply: FastifyReply) => {
        const r = jsonBody<HeartbeatRequest>(req);
        need(typeof r.id === 'string' && typeof r.boot === 'string' && typeof r.url === 'string', 'id, boot and url');
        checkUrl(r.url);
        const answer = await members.heartbeat({ ...r, seq: Number(r.seq) || 0 });
        if (!answer) return reply.code(404).send({ error: { type: 'NotFound', message: `worker "${r.id}" is not registered under this boot; register again` } });
        return answer;
      });
      internal.post('/deregister', async (req) => {
        const r = jsonBody<{ id: string; boot: string }>(req);
        need(typeof r.id === 'string' && typeof r.boot === 'string', 'id and boot');
        return { deregistered: await members.deregister(r.id, r.boot) };
      });
    },
    { prefix: `${INTERNAL_PREFIX}/workers` },
  );

  await app.register(
    async (admin) => {
      admin.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
        if (!tokenMatches(req.headers.authorization, deps.token)) {
          reply.header('www-authenticate', 'Bearer realm="lamina"');
          throw new LaminaError('Unauthorized', 'a valid admin token is required (Authorization: Bearer <token>)');
        }
      });
      admin.get('/workers', async () => {
        await members.poll().catch(() => undefined);
        return {
          gateway: deps.gatewayId,
          routing: { policy: members.router.policy, epsilon: members.router.epsilon },
          workers: members.view(),
        };
      });
      for (const [action, state] of [
        ['drain', 'draining'],
        ['resume', 'up'],
      ] as const) {
        admin.post<{ Params: { id: string } }>(`/workers/:id/${action}`, async (req) => {
          const m = await members.setState(req.params.id, state);
          if (!m) throw new LaminaError('NotFound', `no registered worker "${req.params.id}" (or it has left the cluster)`);
          return members.view().find((w) => w.id === m.id);
        });
      }
    },
    { prefix: '/api/v1' },
  );
}
