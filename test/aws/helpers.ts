// The real AWS SDK client pointed at a Lamina server, and zips made on the fly.
import { LambdaClient } from '@aws-sdk/client-lambda';
import { strToU8, zipSync, type Zippable } from 'fflate';
import assert from 'node:assert/strict';
import type { TestServer } from '../helpers/server.js';

export function lambdaClient(s: TestServer, creds: { id?: string; secret?: string } = {}, extra: Record<string, unknown> = {}): LambdaClient {
  return new LambdaClient({
    endpoint: s.url,
    region: 'eu-west-3',
    credentials: { accessKeyId: creds.id ?? 'admin', secretAccessKey: creds.secret ?? s.token },
    maxAttempts: 1,
    ...extra,
  });
}

/** A zip of text files by path. */
export function zipOf(files: Record<string, string>): Uint8Array {
  const z: Zippable = {};
  for (const [p, text] of Object.entries(files)) z[p] = strToU8(text);
  return zipSync(z);
}

/** Expects the SDK call to fail with AWS exception `name` and HTTP `status`. */
export async function refused(p: Promise<unknown>, name: string, status: number): Promise<Error & { $metadata: { httpStatusCode?: number } }> {
  try {
    await p;
  } catch (err) {
    const e = err as Error & { $metadata: { httpStatusCode?: number } };
    assert.equal(e.name, name, `${e.name}: ${e.message}`);
    assert.equal(e.$metadata.httpStatusCode, status);
    return e;
  }
  assert.fail(`expected ${name}`);
}
