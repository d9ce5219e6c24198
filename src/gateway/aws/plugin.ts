// The AWS Lambda REST API (/2015-03-31/...) as one fastify plugin on the
// gateway's port: every route behind a SigV4 check, every error in AWS's shape.
import { newRequestId } from '../../util/request-id.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AwsError, sendAwsError, toAwsError } from './errors.js';
import { registerFunctionRoutes } from './function-routes.js';
import { registerInvokeRoute } from './invoke-route.js';
import type { AwsRequest } from './request.js';
import { verifySigV4, type CredentialLookup } from './sigv4.js';
import type { AwsDeps } from './types.js';
import { registerVersionRoutes } from './version-routes.js';

/** The API version in every Lambda path. */
export const AWS_PREFIX = '/2015-03-31';

type Tagged = FastifyRequest & { awsRequestId?: string };

/** Access key `admin` signs with the admin token; an invoke key's id with its key. */
export function credentialLookup(deps: Pick<AwsDeps, 'token' | 'invokeKeys'>): CredentialLookup {
  return async (id) => {
    if (id === 'admin') return { secret: deps.token, principal: { kind: 'admin' } };
    const key = await deps.invokeKeys?.(id);
    return key ? { secret: key.secret, principal: { kind: 'key', id, functions: key.functions } } : undefined;
  };
}

/** Register with `{ prefix: AWS_PREFIX }`. */
export async function awsLambdaApi(app: FastifyInstance, deps: AwsDeps): Promise<void> {
  const lookup = credentialLookup(deps);

  app.addHook('onRequest', async (req) => {
    (req as Tagged).awsRequestId = newRequestId();
  });
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-amzn-requestid', (req as Tagged).awsRequestId);
  });
  // After the body is read: the signature covers its hash.
  app.addHook('preHandler', async (req) => {
    const v = await verifySigV4({ method: req.method, rawUrl: req.raw.url ?? req.url, headers: req.headers, body: Buffer.isBuffer(req.body) ? req.body : undefined }, lookup);
    (req as AwsRequest).aws = { requestId: (req as Tagged).awsRequestId!, principal: v.principal, region: v.region };
  });

  app.setErrorHandler(async (err, req, reply) => {
    const e = toAwsError(err);
    if (e.code === 'ServiceException' && e.status === 500) deps.log.error({ err }, 'AWS API request failed');
    return sendAwsError(reply, e, (req as Tagged).awsRequestId ?? newRequestId());
  });
  app.setNotFoundHandler((req, reply) =>
    sendAwsError(reply, new AwsError('UnknownOperationException', 404, `Lamina does not implement ${req.method} ${req.url.split('?')[0]}`), (req as Tagged).awsRequestId ?? newRequestId()),
  );

  registerFunctionRoutes(app, deps);
  registerInvokeRoute(app, deps);
  registerVersionRoutes(app, deps);
}
