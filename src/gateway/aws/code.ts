// CreateFunction and UpdateFunctionCode: a Lambda zip becomes a function
// directory with a lamina.json, deployed through the registry like any other,
// so a function deployed either way is the same function.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { listFiles, removeTree } from '../../registry/files.js';
import type { FunctionVersion, Manifest } from '../../registry/types.js';
import { extractZip } from '../../registry/zip.js';
import { invalidParameter } from './errors.js';
import { handlerOf, laminaRuntime, resolveHandler } from './shapes.js';
import type { AwsDeps } from './types.js';

/** What the AWS request says about the function; undefined keeps the base's value. */
export interface AwsCodeConfig {
  runtime?: string;
  handler?: string;
  memoryMb?: number;
  timeoutMs?: number;
  env?: Record<string, string>;
}

/** The zip's bytes out of a request's Code.ZipFile / ZipFile (base64 in JSON). */
export function zipBytes(raw: unknown, field: string): Buffer {
  if (typeof raw !== 'string' || raw === '') throw invalidParameter(`${field} is required: the function's code as a base64 zip archive (S3 locations and images are not supported)`);
  const buf = Buffer.from(raw, 'base64');
  if (buf.length === 0) throw invalidParameter(`${field} is not base64 data`);
  return buf;
}

async function readZipManifest(root: string): Promise<Record<string, unknown>> {
  const text = await fs.readFile(path.join(root, 'lamina.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return {};
  try {
    const v = JSON.parse(text.replace(/^\uFEFF/, '')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* the registry names the problem below */
  }
  throw invalidParameter('lamina.json in the archive must hold a JSON object');
}

/**
 * Deploys `zip` as function `name`: the manifest is the zip's own lamina.json
 * (if any) over `base` (the current version's, for UpdateFunctionCode), with
 * the AWS settings on top.
 */
export async function deployZip(deps: AwsDeps, name: string, zip: Buffer, cfg: AwsCodeConfig, base?: Manifest): Promise<FunctionVersion> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'lamina-aws-'));
  try {
    const root = await extractZip(zip, path.join(tmp, 'src'), deps.registry.archiveLimits);
    const files = new Set(await listFiles(root, { skipIgnored: true }));
    const own = await readZipManifest(root);
    const manifest: Record<string, unknown> = { ...(base ?? {}), ...own, name };
    const runtime = cfg.runtime !== undefined ? laminaRuntime(cfg.runtime) : ((manifest.runtime as Manifest['runtime'] | undefined) ?? 'node');
    manifest.runtime = runtime;
    // The Handler names the entry; with none given, the base's handler is looked for in the new code.
    const handler = cfg.handler ?? (base ? handlerOf(base) : undefined);
    if (handler === undefined) {
      if (own.entry === undefined) throw invalidParameter('Handler is required (FILE.EXPORT, such as index.handler)');
    } else if (!(own.entry !== undefined && cfg.handler === undefined)) {
      Object.assign(manifest, resolveHandler(handler, runtime, files));
    }
    if (cfg.memoryMb !== undefined) manifest.memoryMb = cfg.memoryMb;
    if (cfg.timeoutMs !== undefined) manifest.timeoutMs = cfg.timeoutMs;
    if (cfg.env !== undefined) manifest.env = cfg.env;
    // Python's default entry f.py has no fixed handler name: the manifest now names both.
    await fs.writeFile(path.join(root, 'lamina.json'), JSON.stringify(manifest));
    const fv = await deps.registry.deployDir(root, { name, validate: deps.checkManifest });
    // As the admin deploy: where the node loads new versions ahead (isolates), answer once it did (bounded).
    await deps.worker.whenStartedAhead?.(fv.name, fv.version);
    return fv;
  } finally {
    await removeTree(tmp);
  }
}
