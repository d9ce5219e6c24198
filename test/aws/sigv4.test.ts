// verifySigV4 in process: requests signed by the SDK's signer pass; every
// tampered part, an expired date, other payload forms and key rights fail.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { credentialLookup } from '../../src/gateway/aws/plugin.js';
import { verifySigV4, type SignedRequest } from '../../src/gateway/aws/sigv4.js';

const TOKEN = 'the-admin-token';
const lookup = credentialLookup({ token: TOKEN, invokeKeys: async (id) => (id === 'key1' ? { secret: 'key-secret', functions: ['a'] } : undefined) });
const NOW = Date.UTC(2026, 10, 27, 8, 0, 0);

async function signed(opts: { path?: string; query?: Record<string, string>; body?: string; id?: string; secret?: string; date?: number; headers?: Record<string, string>; service?: string; applyChecksum?: boolean } = {}): Promise<SignedRequest> {
  const body = opts.body ?? '{"x":1}';
  const req = new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 5000,
    path: opts.path ?? '/2015-03-31/functions/fn%3Alive/invocations',
    query: opts.query ?? {},
    headers: { host: '127.0.0.1:5000', 'content-type': 'application/json', ...opts.headers },
    body,
  });
  const signer = new SignatureV4({ credentials: { accessKeyId: opts.id ?? 'admin', secretAccessKey: opts.secret ?? TOKEN }, region: 'ap-south-1', service: opts.service ?? 'lambda', sha256: Hash.bind(null, 'sha256'), applyChecksum: opts.applyChecksum ?? true });
  const out = await signer.sign(req, { signingDate: new Date(opts.date ?? NOW) });
  const qs = Object.entries(out.query ?? {}).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(out.headers)) headers[k.toLowerCase()] = v;
  return { method: 'POST', rawUrl: out.path + (qs ? `?${qs}` : ''), headers, body: Buffer.from(body) };
}

const refuses = (r: SignedRequest, re: RegExp, now = NOW) =>
  assert.rejects(verifySigV4(r, lookup, now), (e: Error & { code?: string; status?: number }) => {
    assert.equal(e.code, 'InvalidSignatureException');
    assert.equal(e.status, 403);
    assert.match(e.message, re);
    return true;
  });

test('a request signed by the SDK signer verifies, with its region and principal', async () => {
  const v = await verifySigV4(await signed({ query: { Qualifier: 'live' } }), lookup, NOW);
  assert.deepEqual(v, { principal: { kind: 'admin' }, region: 'ap-south-1' });
  const k = await verifySigV4(await signed({ id: 'key1', secret: 'key-secret' }), lookup, NOW);
  assert.deepEqual(k.principal, { kind: 'key', id: 'key1', functions: ['a'] });
});

test('UNSIGNED-PAYLOAD and a matching x-amz-content-sha256 verify; a mismatching one is refused', async () => {
  await verifySigV4(await signed({ headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } }), lookup, NOW);
  const hash = createHash('sha256').update('{"x":1}').digest('hex');
  await verifySigV4(await signed({ headers: { 'x-amz-content-sha256': hash } }), lookup, NOW);
  const lying = await signed({ headers: { 'x-amz-content-sha256': createHash('sha256').update('other').digest('hex') } });
  await refuses(lying, /does not match the body/);
  await refuses(await signed({ headers: { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' } }), /not supported/);
});

test('every tampered part is refused', async () => {
  const ok = await signed({ query: { Qualifier: 'live' } });
  await refuses({ ...ok, body: Buffer.from('{"x":2}') }, /does not match/);
  // Without x-amz-content-sha256 (as the AWS CLI signs), the body's own hash is in the signature.
  const bare = await signed({ applyChecksum: false });
  assert.equal(bare.headers['x-amz-content-sha256'], undefined);
  await verifySigV4(bare, lookup, NOW);
  await refuses({ ...bare, body: Buffer.from('{"x":2}') }, /does not match the signature/);
  await refuses({ ...ok, method: 'PUT' }, /does not match the signature/);
  await refuses({ ...ok, rawUrl: ok.rawUrl.replace('fn%3Alive', 'fn%3Aprod') }, /does not match the signature/);
  await refuses({ ...ok, rawUrl: ok.rawUrl.replace('Qualifier=live', 'Qualifier=prod') }, /does not match the signature/);
  await refuses({ ...ok, headers: { ...ok.headers, host: 'evil.example' } }, /does not match the signature/);
  await refuses({ ...ok, headers: { ...ok.headers, 'content-type': 'text/plain' } }, /does not match the signature/);
  const sig = /Signature=([0-9a-f]+)/.exec(ok.headers.authorization as string)![1]!;
  const flipped = (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1);
  await refuses({ ...ok, headers: { ...ok.headers, authorization: (ok.headers.authorization as string).replace(sig, flipped) } }, /does not match the signature/);
});

test('wrong secrets, unknown keys, other services, bad or missing headers and skew are refused', async () => {
  await refuses(await signed({ secret: 'wrong' }), /does not match the signature/);
  await refuses(await signed({ id: 'nobody' }), /unknown access key/);
  await refuses(await signed({ service: 's3' }), /service "s3"/);
  const ok = await signed();
  await refuses({ ...ok, headers: { ...ok.headers, authorization: undefined } }, /not signed/);
  await refuses({ ...ok, headers: { ...ok.headers, authorization: 'Bearer x' } }, /not an AWS4-HMAC-SHA256/);
  await refuses({ ...ok, headers: { ...ok.headers, 'x-amz-date': undefined } }, /X-Amz-Date/);
  await refuses({ ...ok, headers: { ...ok.headers, 'content-type': undefined } }, /signed header "content-type" is missing/);
  // 15 minutes of skew either way, and not a second more.
  await verifySigV4(await signed({ date: NOW - 15 * 60 * 1000 + 1000 }), lookup, NOW);
  await verifySigV4(await signed({ date: NOW + 15 * 60 * 1000 - 1000 }), lookup, NOW);
  await refuses(await signed({ date: NOW - 16 * 60 * 1000 }), /15 minutes/);
  await refuses(await signed({ date: NOW + 16 * 60 * 1000 }), /15 minutes/);
});
