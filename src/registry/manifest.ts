// lamina.json: validation and defaults. zod checks the shape; the messages are
// ours, because the contract wants every rejection to name the field.
import path from 'node:path';
import { z } from 'zod';
import { LaminaError } from '../errors.js';
import { compileCron } from '../util/cron.js';
import { HTTP_EVENTS, HTTP_METHODS, type HttpMethod, type Manifest } from './types.js';

// OpenLambda's names (e.g. "L0"): case-sensitive; "." is allowed but a name can
// never be "." or ".." (it starts with a letter or digit), and names are never
// used as file paths (code is stored by hash, sandboxes by id).
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const NAME_RULE = '1 to 63 characters of A-Z, a-z, 0-9, ".", "-" and "_", starting with a letter or digit (case-sensitive)';
const IDENT_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_MAX_BYTES = 4096;
const RESERVED_ENV_PREFIX = 'LAMINA_';

export const NODE_DEFAULT_ENTRIES = ['index.ts', 'index.mts', 'index.js', 'index.mjs'] as const;
export const PYTHON_DEFAULT_ENTRIES = ['f.py', 'main.py', 'handler.py'] as const;
const NODE_EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];

/** "*" or scheme://host[:port], as browsers send in Origin. */
const ORIGIN_RE = /^(\*|https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?)$/;
/** An HTTP header name. */
const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HTTP_RULES: Record<string, string> = {
  event: 'one of "json", "request", "wsgi", "asgi"',
  auth: 'one of "none", "token"',
  cors: 'an object such as {"allowOrigins": ["https://app.example"]}',
  'cors.allowOrigins': 'a non-empty array of origins such as "https://app.example" (or "*")',
  'cors.allowMethods': `a non-empty array of HTTP methods (${'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'})`,
  'cors.allowHeaders': 'an array of header names',
  'cors.exposeHeaders': 'an array of header names',
  'cors.allowCredentials': 'true or false',
  'cors.maxAge': 'an integer number of seconds from 0 to 86400',
};

const METHOD_SET = new Set<string>(HTTP_METHODS);
const methodSchema = z.string().refine((m) => METHOD_SET.has(m.toUpperCase()));

/** Each field's schema and the phrase that completes `"field" must be ...`. */
const FIELDS = {
  name: [z.string().regex(NAME_RE), `a string of ${NAME_RULE}`],
  runtime: [z.enum(['node', 'python']), 'one of "node", "python"'],
  entry: [z.string().min(1), 'a non-empty string (a file path inside the function directory)'],
  handler: [z.string().regex(IDENT_RE), 'an identifier such as "handler"'],
  memoryMb: [z.number().int().min(64).max(10240), 'an integer between 64 and 10240'],
  timeoutMs: [z.number().int().min(1).max(900000), 'an integer between 1 and 900000'],
  concurrency: [z.number().int().min(1).max(1000), 'an integer between 1 and 1000'],
  processes: [z.number().int().min(1).max(4096), 'an integer between 1 and 4096 (most processes and threads in one sandbox)'],
  instanceConcurrency: [z.number().int().min(1).max(1000), 'an integer between 1 and 1000'],
  sandbox: [z.enum(['auto', 'container', 'process', 'isolate']), 'one of "auto", "container", "process", "isolate"'],
  env: [z.record(z.string(), z.string()), 'an object of string values'],
  network: [z.boolean(), 'true or false'],
  http: [
    z.strictObject({
      methods: z.array(methodSchema).min(1).optional(),
      event: z.enum(['json', 'request', 'wsgi', 'asgi']).optional(),
      auth: z.enum(['none', 'token']).optional(),
      cors: z
        .strictObject({
          allowOrigins: z.array(z.string().regex(ORIGIN_RE)).min(1),
          allowMethods: z.array(methodSchema).min(1).optional(),
          allowHeaders: z.array(z.string().regex(TOKEN_RE)).optional(),
          exposeHeaders: z.array(z.string().regex(TOKEN_RE)).optional(),
          allowCredentials: z.boolean().optional(),
          maxAge: z.number().int().min(0).max(86400).optional(),
        })
        .optional(),
    }),
    'an object such as {"methods": ["GET", "POST"], "event": "request", "auth": "token"}',
  ],
  async: [
    z.strictObject({
      retries: z.number().int().min(0).max(10).optional(),
      maxEventAgeS: z.number().int().min(60).max(21600).optional(),
      onSuccess: z.string().regex(NAME_RE).optional(),
      onFailure: z.string().regex(NAME_RE).optional(),
    }),
    'an object such as {"retries": 2, "maxEventAgeS": 21600, "onSuccess": "fn", "onFailure": "fn"}',
  ],
  schedules: [
    z
      .array(z.strictObject({ cron: z.string().min(1), event: z.unknown().optional(), timezone: z.string().min(1).optional() }))
      .max(50),
    'an array (at most 50) of objects such as {"cron": "0 */5 * * * *", "event": {}, "timezone": "UTC"}',
  ],
} as const;

const NESTED_RULES: Record<string, string> = {
  'async.retries': 'an integer between 0 and 10',
  'async.maxEventAgeS': 'an integer between 60 and 21600',
  'async.onSuccess': `a function name (${NAME_RULE})`,
  'async.onFailure': `a function name (${NAME_RULE})`,
  'schedules.cron': 'a cron expression string',
  'schedules.timezone': 'an IANA time zone name such as "UTC"',
};
const NESTED_KNOWN: Record<string, string> = { http: 'methods', async: 'retries, maxEventAgeS, onSuccess, onFailure', schedules: 'cron, event, timezone' };

const METHODS_RULE = `a non-empty array of HTTP methods (${HTTP_METHODS.join(', ')})`;
const METHOD_RULE = `one of ${HTTP_METHODS.join(', ')}`;

type FieldName = keyof typeof FIELDS;
const FIELD_NAMES = Object.keys(FIELDS) as FieldName[];

const manifestSchema = z.strictObject(
  Object.fromEntries(FIELD_NAMES.map((k) => [k, FIELDS[k][0].optional()])) as {
    [K in FieldName]: z.ZodOptional<(typeof FIELDS)[K][0]>;
  },
);

function invalid(message: string): LaminaError {
  return new LaminaError('InvalidFunction', `lamina.json: ${message}`);
}

/** A short JSON rendering of an offending value for messages. */
function show(value: unknown): string {
  let s: string;
  try {
    s = value === undefined ? 'nothing' : (JSON.stringify(value) ?? String(value));
  } catch {
    s = String(value);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function pathText(p: readonly PropertyKey[]): string {
  return p.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)), '');
}

function valueAt(raw: unknown, p: readonly PropertyKey[]): unknown {
  let v: unknown = raw;
  for (const k of p) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

function rule(p: readonly PropertyKey[]): string {
  const [top, second] = p;
  if (top === 'env' && p.length === 2) return 'a string';
  if (top === 'http' && second === 'methods') return p.length === 2 ? METHODS_RULE : METHOD_RULE;
  const nested = NESTED_RULES[`${String(top)}.${String(typeof second === 'number' ? p[2] : second)}`];
  if (nested && p.length >= 2) return nested;
  if (top === 'http' && typeof second === 'string') {
    const key = p.length >= 3 && typeof p[2] === 'string' ? `${second}.${p[2]}` : second;
    return HTTP_RULES[key] ?? HTTP_RULES[second] ?? 'valid';
  }
  return FIELDS[top as FieldName]?.[1] ?? 'valid';
}

function issueMessage(issue: z.core.$ZodIssue, raw: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    const prefix = issue.path.length ? `${pathText(issue.path)}.` : '';
    const known = !issue.path.length
      ? FIELD_NAMES.join(', ')
      : issue.path[0] === 'http'
        ? issue.path.length === 1
          ? 'methods, event, auth, cors'
          : 'allowOrigins, allowMethods, allowHeaders, exposeHeaders, allowCredentials, maxAge'
        : (NESTED_KNOWN[String(issue.path[0])] ?? '');
    const names = issue.keys.map((k) => `"${prefix}${k}"`).join(', ');
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${names} (known: ${known})`;
  }
  return `"${pathText(issue.path)}" must be ${rule(issue.path)} (got ${show(valueAt(raw, issue.path))})`;
}

/** Throws InvalidFunction unless `name` is a valid function name. */
export function validateFunctionName(name: string): void {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new LaminaError('InvalidFunction', `invalid function name ${show(name)}: use ${NAME_RULE}`);
  }
}

export function isValidFunctionName(name: string): boolean {
  return NAME_RE.test(name);
}

/** Normalizes a manifest entry path; undefined when it leaves the directory. */
function normalizeEntry(entry: string): string | undefined {
  if (entry.includes('\\') || entry.includes('\0') || path.posix.isAbsolute(entry)) return undefined;
  const n = path.posix.normalize(entry);
  if (n === '..' || n.startsWith('../') || n === '.' || n.endsWith('/')) return undefined;
  return n;
}

function resolveEntry(runtime: Manifest['runtime'], given: string | undefined, files: ReadonlySet<string>): string {
  const defaults: readonly string[] = runtime === 'node' ? NODE_DEFAULT_ENTRIES : PYTHON_DEFAULT_ENTRIES;
  if (given === undefined) {
    const found = defaults.find((f) => files.has(f));
    if (!found) {
      throw invalid(`no entry file: expected one of ${defaults.join(', ')} in the function directory (or set "entry")`);
    }
    return found;
  }
  const entry = normalizeEntry(given);
  if (!entry) throw invalid(`"entry" must be a relative path inside the function directory (got ${show(given)})`);
  const ext = path.posix.extname(entry);
  if (runtime === 'node' && !NODE_EXTENSIONS.includes(ext)) {
    throw invalid(`"entry" must be a ${NODE_EXTENSIONS.join(', ')} file for the node runtime (got ${show(given)})`);
  }
  if (runtime === 'python' && ext !== '.py') {
    throw invalid(`"entry" must be a .py file for the python runtime (got ${show(given)})`);
  }
  if (!files.has(entry)) throw invalid(`"entry" file ${show(entry)} does not exist in the function directory`);
  return entry;
}

function checkEnv(env: Record<string, string>): void {
  let bytes = 0;
  for (const [key, value] of Object.entries(env)) {
    if (!ENV_KEY_RE.test(key)) throw invalid(`"env" name ${show(key)} must match ${ENV_KEY_RE.source}`);
    if (key.startsWith(RESERVED_ENV_PREFIX)) {
      throw invalid(`"env.${key}" uses the reserved prefix ${RESERVED_ENV_PREFIX} (Lamina sets those itself)`);
    }
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  if (bytes > ENV_MAX_BYTES) {
    throw invalid(`"env" is too large: ${bytes} bytes of names and values (at most ${ENV_MAX_BYTES})`);
  }
}

/**
 * The runtime of a manifest that does not name one: python when the entry is a
 * .py file, or when there is no entry, no Node default entry and an f.py
 * (an OpenLambda function directory); else node.
 */
function inferRuntime(entry: string | undefined, files: readonly string[]): Manifest['runtime'] {
  if (entry !== undefined) return entry.endsWith('.py') ? 'python' : 'node';
  const set = new Set(files);
  if (NODE_DEFAULT_ENTRIES.some((f) => set.has(f))) return 'node';
  return set.has('f.py') ? 'python' : 'node';
}

/**
 * Validates a parsed lamina.json (`{}` when the file is absent) and fills the
 * defaults. `files` lists the directory's regular files as relative posix paths.
 */
export function parseManifest(raw: unknown, ctx: { dirName: string; files: string[] }): Manifest {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw invalid(`must hold a JSON object (got ${Array.isArray(raw) ? 'an array' : show(raw)})`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((i) => issueMessage(i, raw));
    throw invalid([...new Set(messages)].join('; '));
  }
  const m = parsed.data;

  const name = m.name ?? ctx.dirName;
  if (m.name === undefined && !NAME_RE.test(name)) {
    throw invalid(`the function name defaults to the directory name ${show(name)}, which is not valid: set "name" to ${NAME_RULE}`);
  }

  const runtime = m.runtime ?? inferRuntime(m.entry, ctx.files);
  const sandbox = m.sandbox ?? 'auto';
  if (runtime === 'python' && (sandbox === 'isolate' || sandbox === 'process')) {
    // Only the container tier confines a Python interpreter (the process tier relies on Node's permission model).
    throw invalid(`"sandbox": "${sandbox}" cannot run python (${sandbox === 'isolate' ? 'isolates run JavaScript only' : "the process tier confines Node only"}); a python function needs "auto" or "container" (the container tier)`);
  }
  const event = m.http?.event ?? 'json';
  if ((event === 'wsgi' || event === 'asgi') && runtime !== 'python') {
    throw invalid(`"http.event": "${event}" serves a Python ${event.toUpperCase()} application; a ${runtime} function uses "json" or "request" (or exports fetch)`);
  }

  const entry = resolveEntry(runtime, m.entry, new Set(ctx.files));

  // Flask and FastAPI apps are conventionally a module-level `app`.
  const handler = m.handler ?? (event === 'wsgi' || event === 'asgi' ? 'app' : runtime === 'python' && path.posix.basename(entry) === 'f.py' ? 'f' : 'handler');

  const env = m.env ?? {};
  checkEnv(env);

  const methods = m.http?.methods
    ? [...new Set(m.http.methods.map((x) => x.toUpperCase() as HttpMethod))]
    : [...HTTP_METHODS];

  const c = m.http?.cors;
  const cors = c && {
    allowOrigins: [...new Set(c.allowOrigins)],
    allowMethods: c.allowMethods ? [...new Set(c.allowMethods.map((x) => x.toUpperCase() as HttpMethod))] : methods,
    allowHeaders: (c.allowHeaders ?? []).map((h) => h.toLowerCase()),
    exposeHeaders: (c.exposeHeaders ?? []).map((h) => h.toLowerCase()),
    allowCredentials: c.allowCredentials ?? false,
    maxAge: c.maxAge ?? 600,
  };
  if (cors?.allowCredentials && cors.allowOrigins.includes('*')) {
    throw invalid('"http.cors": "allowCredentials": true needs explicit origins (browsers refuse credentials with "*")');
  }
  const schedules = (m.schedules ?? []).map((sch, i) => {
    const timezone = sch.timezone ?? 'UTC';
    try {
      compileCron(sch.cron, timezone);
    } catch (err) {
      throw invalid(`"schedules[${i}]": ${(err as Error).message}`);
    }
    return { cron: sch.cron.trim(), event: sch.event === undefined ? {} : sch.event, timezone };
  });

  return {
    name,
    runtime,
    entry,
    handler,
    memoryMb: m.memoryMb ?? 128,
    timeoutMs: m.timeoutMs ?? 30000,
    concurrency: m.concurrency ?? 100,
    instanceConcurrency: m.instanceConcurrency ?? 1,
    sandbox,
    env: { ...env },
    network: m.network ?? false,
    ...(m.processes !== undefined ? { processes: m.processes } : {}),
    http: { methods, event, auth: m.http?.auth ?? 'none', ...(cors ? { cors } : {}) },
    ...(m.async ? { async: { retries: m.async.retries ?? 2, maxEventAgeS: m.async.maxEventAgeS ?? 21600, ...(m.async.onSuccess ? { onSuccess: m.async.onSuccess } : {}), ...(m.async.onFailure ? { onFailure: m.async.onFailure } : {}) } } : {}),
    ...(schedules.length ? { schedules } : {}),
  };
}
