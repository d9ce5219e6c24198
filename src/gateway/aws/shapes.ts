// Lamina's functions in the shapes of the AWS SDK's Lambda model
// (FunctionConfiguration, AliasConfiguration), and names back (ARNs, runtimes, handlers).
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { FunctionVersion, Manifest } from '../../registry/types.js';
import type { Alias, AwsSettings } from '../../versions/store.js';
import { invalidParameter } from './errors.js';

/** Lamina has no AWS accounts; ARNs carry this one. */
export const ACCOUNT_ID = '000000000000';
const NAME_PART = '([A-Za-z0-9._-]+)';
const QUALIFIER_PART = '(\\$LATEST|[A-Za-z0-9_-]+)';
const FUNCTION_REF_RE = new RegExp(`^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\\d{12}:function:|\\d{12}:function:)?${NAME_PART}(?::${QUALIFIER_PART})?$`);

/** A FunctionName as AWS accepts it: a name, `name:qualifier`, a full ARN or a partial one. */
export function parseFunctionRef(raw: string): { name: string; qualifier?: string } {
  const m = FUNCTION_REF_RE.exec(raw);
  if (!m) throw invalidParameter(`invalid function name or ARN ${JSON.stringify(raw)}`);
  return m[2] === undefined ? { name: m[1]! } : { name: m[1]!, qualifier: m[2] };
}

export function functionArn(region: string, name: string, qualifier?: string): string {
  return `arn:aws:lambda:${region}:${ACCOUNT_ID}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
}

/** nodejs18.x/20.x/22.x run on Lamina's node runtime, python3.x on python. */
export function laminaRuntime(runtime: string): Manifest['runtime'] {
  if (/^nodejs(18|20|22)\.x$/.test(runtime)) return 'node';
  if (/^python3\.\d+$/.test(runtime)) return 'python';
  throw invalidParameter(`The runtime parameter of ${runtime} is not supported: use nodejs18.x, nodejs20.x, nodejs22.x or python3.x`);
}

export function awsRuntime(m: Manifest, settings: AwsSettings): string {
  if (settings.runtime && laminaRuntimeOrUndefined(settings.runtime) === m.runtime) return settings.runtime;
  return m.runtime === 'python' ? 'python3.11' : 'nodejs20.x';
}

function laminaRuntimeOrUndefined(runtime: string): Manifest['runtime'] | undefined {
  try {
    return laminaRuntime(runtime);
  } catch {
    return undefined;
  }
}

/** The Handler string of a manifest: the entry without its extension, a dot, the export (`src/app.handler`). */
export function handlerOf(m: Manifest): string {
  const ext = path.posix.extname(m.entry);
  return `${m.entry.slice(0, m.entry.length - ext.length)}.${m.handler}`;
}

/** The Handler as the client gave it (`pkg.mod.handler`), while it still names the version's entry and export. */
export function awsHandler(m: Manifest, settings: AwsSettings): string {
  const derived = handlerOf(m);
  const given = settings.handler;
  return given && given.replace(/\./g, '/') === derived.replace(/\./g, '/') ? given : derived;
}

const NODE_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'];
const IDENT_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Turns a Handler (`file.export`, the file without its extension, nested paths allowed) into the manifest's entry and handler. */
export function resolveHandler(handler: string, runtime: Manifest['runtime'], files: ReadonlySet<string>): { entry: string; handler: string } {
  const i = handler.lastIndexOf('.');
  if (i <= 0 || i === handler.length - 1) throw invalidParameter(`Handler ${JSON.stringify(handler)} must be FILE.EXPORT, such as index.handler or src/app.handler`);
  const file = handler.slice(0, i).replace(/^\.\//, '');
  const fn = handler.slice(i + 1);
  if (!IDENT_RE.test(fn)) throw invalidParameter(`Handler ${JSON.stringify(handler)}: "${fn}" is not a function name`);
  const candidates = runtime === 'python' ? [`${file}.py`, `${file.replace(/\./g, '/')}.py`] : NODE_EXTENSIONS.map((e) => file + e);
  const entry = candidates.find((c) => files.has(c));
  if (!entry) throw invalidParameter(`Handler ${JSON.stringify(handler)}: the archive has no ${candidates.slice(0, 3).join(', ')}${candidates.length > 3 ? '...' : ''}`);
  return { entry, handler: fn };
}

/** Lambda's time format, 2026-01-02T03:04:05.000+0000. */
export function awsTime(iso: string): string {
  return new Date(iso).toISOString().replace('Z', '+0000');
}

/** A stable revision id of one version (a version never changes). */
function revisionOf(fv: FunctionVersion): string {
  const h = createHash('sha256').update(`${fv.name}@${fv.version}@${fv.codeHash}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** A FunctionConfiguration of `fv`, labelled `$LATEST` or with its published number. */
export function functionConfiguration(fv: FunctionVersion, settings: AwsSettings, label: string, region: string, description?: string) {
  const m = fv.manifest;
  return {
    FunctionName: fv.name,
    FunctionArn: functionArn(region, fv.name, label === '$LATEST' ? undefined : label),
    Runtime: awsRuntime(m, settings),
    Role: settings.role || `arn:aws:iam::${ACCOUNT_ID}:role/lamina`,
    Handler: awsHandler(m, settings),
    CodeSize: fv.sizeBytes,
    Description: description ?? settings.description,
    Timeout: Math.ceil(m.timeoutMs / 1000),
    MemorySize: m.memoryMb,
    LastModified: awsTime(fv.createdAt),
    CodeSha256: Buffer.from(fv.codeHash, 'hex').toString('base64'),
    Version: label,
    Environment: { Variables: { ...m.env } },
    RevisionId: revisionOf(fv),
    State: 'Active',
    LastUpdateStatus: 'Successful',
    PackageType: 'Zip',
    Architectures: ['x86_64'],
    EphemeralStorage: { Size: 512 },
  };
}

export function aliasConfiguration(a: Alias, region: string) {
  return {
    AliasArn: functionArn(region, a.name, a.alias),
    Name: a.alias,
    FunctionVersion: a.version === 0 ? '$LATEST' : String(a.version),
    Description: a.description,
    ...(a.extraVersion !== null && a.extraWeight !== null ? { RoutingConfig: { AdditionalVersionWeights: { [String(a.extraVersion)]: a.extraWeight } } } : {}),
    RevisionId: a.revisionId,
  };
}
