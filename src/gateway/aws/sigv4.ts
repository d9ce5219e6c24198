// AWS Signature Version 4, checked on every AWS route: the expected signature
// is computed by the SDK's own signer (@smithy/signature-v4) over exactly the
// headers the client says it signed, the path as it came on the wire, and the
// payload hash (of the body, or the client's x-amz-content-sha256, which must
// then match the body unless it is UNSIGNED-PAYLOAD). At most 15 minutes of
// clock skew; the comparison takes constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { invalidSignature } from './errors.js';

export const MAX_SKEW_MS = 15 * 60 * 1000;
const AUTH_RE = /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/;
const DATE_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const UNSIGNED = 'UNSIGNED-PAYLOAD';

/** Who signed a request. */
export type Principal = { kind: 'admin' } | { kind: 'key'; id: string; functions: string[] };

/** Finds the secret of an access key id; undefined when there is no such key. */
export type CredentialLookup = (accessKeyId: string) => Promise<{ secret: string; principal: Principal } | undefined>;

export interface SignedRequest {
  method: string;
  /** Path and query exactly as received (still percent-encoded). */
  rawUrl: string;
  headers: IncomingHttpHeaders;
  body: Buffer | undefined;
}

export interface Verified {
  principal: Principal;
  /** The region the client signed for (the credential scope's). */
  region: string;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function parseQuery(raw: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (!raw) return out;
  for (const part of raw.split('&')) {
    if (!part) continue;
    const i = part.indexOf('=');
    let k: string;
    let v: string;
    try {
      k = decodeURIComponent(i < 0 ? part : part.slice(0, i));
      v = i < 0 ? '' : decodeURIComponent(part.slice(i + 1));
    } catch {
      throw invalidSignature('the query string is not valid percent-encoding');
    }
    const cur = out[k];
    out[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  return out;
}

function parseAmzDate(s: string): Date | undefined {
  const m = DATE_RE.exec(s);
  if (!m) return undefined;
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Throws InvalidSignatureException (403) unless the request carries a valid SigV4 signature of a known key. */
export async function verifySigV4(req: SignedRequest, lookup: CredentialLookup, now = Date.now()): Promise<Verified> {
  const auth = header(req.headers, 'authorization');
  if (!auth) throw invalidSignature('the request is not signed: an AWS Signature Version 4 Authorization header is required');
  const m = AUTH_RE.exec(auth.trim());
  if (!m) throw invalidSignature('the Authorization header is not an AWS4-HMAC-SHA256 signature');
  const [, credential, signedList, signature] = m as unknown as [string, string, string, string];
  const scope = credential.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request') throw invalidSignature('the credential must be ACCESS_KEY/DATE/REGION/SERVICE/aws4_request');
  const [accessKeyId, shortDate, region, service] = scope as [string, string, string, string];
  if (service !== 'lambda') throw invalidSignature(`the credential is for the service "${service}"; this endpoint is "lambda"`);

  const amzDate = header(req.headers, 'x-amz-date');
  const date = amzDate ? parseAmzDate(amzDate) : undefined;
  if (!date) throw invalidSignature('an X-Amz-Date header (YYYYMMDDTHHMMSSZ) is required');
  if (Math.abs(now - date.getTime()) > MAX_SKEW_MS) {
    throw invalidSignature(`Signature expired: ${amzDate} is more than 15 minutes from the server's time ${new Date(now).toISOString()}`);
  }
  if (amzDate!.slice(0, 8) !== shortDate) throw invalidSignature('the credential scope date does not match X-Amz-Date');

  const signed = signedList.split(';');
  if (!signed.includes('host')) throw invalidSignature('the Host header must be signed');
  const headers: Record<string, string> = {};
  for (const h of signed) {
    const v = header(req.headers, h);
    if (v === undefined) throw invalidSignature(`the signed header "${h}" is missing`);
    headers[h] = v;
  }
  const contentSha = headers['x-amz-content-sha256'];
  if (contentSha !== undefined && contentSha !== UNSIGNED) {
    if (contentSha.startsWith('STREAMING-')) throw invalidSignature(`the payload form ${contentSha} is not supported by the Lambda API (send the body whole)`);
    const actual = createHash('sha256').update(req.body ?? Buffer.alloc(0)).digest('hex');
    if (contentSha !== actual) throw invalidSignature('x-amz-content-sha256 does not match the body');
  }

  const found = await lookup(accessKeyId);
  if (!found) throw invalidSignature('The security token included in the request is invalid: unknown access key id');

  const q = req.rawUrl.indexOf('?');
  const path = q < 0 ? req.rawUrl : req.rawUrl.slice(0, q);
  const request = new HttpRequest({
    method: req.method,
    protocol: 'http:',
    hostname: headers.host ?? '',
    path,
    query: parseQuery(q < 0 ? '' : req.rawUrl.slice(q + 1)),
    headers,
    body: req.body && req.body.length > 0 ? req.body : undefined,
  });
  const signer = new SignatureV4({
    credentials: { accessKeyId, secretAccessKey: found.secret },
    region,
    service: 'lambda',
    sha256: Hash.bind(null, 'sha256'),
    applyChecksum: false,
  });
  const out = await signer.sign(request, { signingDate: date, signingRegion: region, signingService: 'lambda', signableHeaders: new Set(signed) });
  const expected = /Signature=([0-9a-f]{64})/.exec(String(out.headers.authorization ?? ''))?.[1] ?? '';
  const a = Buffer.from(expected.padEnd(64, '0'));
  const b = Buffer.from(signature);
  if (!(timingSafeEqual(a, b) && expected.length === 64)) {
    throw invalidSignature('The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.');
  }
  return { principal: found.principal, region };
}
