// What a function's dependencies are, read from its package.json and lockfile
// before anything is installed: the install inputs, normalized so that they do
// not depend on the function (its name, its version, where it lives), and the
// cache key over them.
//
// Key: sha256 over the normalized lockfile (when there is one) and the
// install-relevant package.json fields, the bytes of every `file:` tarball, and
// the runtime (Node ABI, platform, arch); without a lockfile also the npm
// version, since npm then resolves the ranges itself. Two functions (or two
// versions) with equal inputs share one install.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { LaminaError } from '../errors.js';

/** Bumped when the layout or the installer's behaviour changes, so old entries are not reused. */
export const INSTALL_FORMAT = 1;

/** package.json fields that change what `npm ci` / `npm install` produces. */
const INSTALL_FIELDS = ['dependencies', 'optionalDependencies', 'peerDependencies', 'peerDependenciesMeta', 'overrides', 'bundleDependencies', 'bundledDependencies', 'allowScripts'] as const;
const DEP_FIELDS = ['dependencies', 'optionalDependencies'] as const;
const LOCKFILES = ['npm-shrinkwrap.json', 'package-lock.json'] as const;
/** The name every normalized install root gets (the function's own name must not split the cache). */
export const ROOT_NAME = 'lamina-packages';

export interface PackagePlan {
  /** sha256 hex of the install inputs: the cache key. */
  hash: string;
  /** package.json written into the install dir (only the install-relevant fields). */
  packageJson: Record<string, unknown>;
  /** The normalized lockfile, or undefined (then npm resolves and the produced lockfile is kept). */
  lockfile: Record<string, unknown> | undefined;
  /** Files the install reads from the function dir (file: tarballs), as posix paths relative to it, with their absolute source. */
  files: { rel: string; abs: string }[];
  /** Direct dependency names (dependencies and optionalDependencies; for pip, the requirements' project names). */
  dependencies: string[];
  /** Absent for npm; "pip" for a Python function's requirements.txt (pip-plan.ts). */
  ecosystem?: 'pip';
  /** pip only: the normalized requirements.txt that is installed. */
  requirements?: string;
}

export interface RuntimeIdentity {
  /** `npm --version` of the installer. */
  npmVersion: string;
  /** Node's module ABI (process.versions.modules), platform and arch: native addons depend on them. */
  node: string;
}

export function currentNodeIdentity(): string {
  return `node-abi${process.versions.modules}-${process.platform}-${process.arch}`;
}

function invalid(message: string): LaminaError {
  return new LaminaError('InvalidFunction', message);
}

async function readJson(abs: string, label: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.readFile(abs, 'utf8');
  } catch (err) {
    throw invalid(`${label}: cannot read it (${(err as Error).message})`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw invalid(`${label}: invalid JSON (${(err as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalid(`${label}: must hold a JSON object`);
  return v as Record<string, unknown>;
}

/** A `file:` path, normalized relative to the function dir, or an error message. */
function insideDir(spec: string): string | { error: string } {
  const raw = spec.slice('file:'.length);
  if (raw.includes('\0') || raw.includes('\\') || path.posix.isAbsolute(raw) || raw.startsWith('~')) return { error: 'must be a relative path inside the function directory' };
  const n = path.posix.normalize(raw);
  if (n === '..' || n.startsWith('../') || n === '.' || n === '') return { error: 'must be a relative path inside the function directory' };
  return n;
}

const PACKAGE_NAME_RE = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/i;
/** Dependency sources that need a host other than the registry (git, URLs, GitHub shorthands) or a path outside an archive (link:). */
const REMOTE_RE = /^(?:git|git\+[a-z]+|github|gitlab|bitbucket|gist|https?):|^[\w.-]+\/[\w.-]+(?:#.*)?$/i;

/**
 * Reads a function's package.json (and lockfile) and plans the install, or
 * returns undefined when the function declares no dependencies (then its code is
 * bundled as before, including any node_modules of its own).
 * @param files the function's files (relative posix paths, dotfiles and node_modules excluded)
 */
export async function planPackages(srcDir: string, files: readonly string[], runtime: RuntimeIdentity): Promise<PackagePlan | undefined> {
  const fileSet = new Set(files);
  if (!fileSet.has('package.json')) return undefined;
  const pkg = await readJson(path.join(srcDir, 'package.json'), 'package.json');

  const dependencies: string[] = [];
  const tarballs = new Map<string, string>(); // rel -> what referenced it
  const addTarball = (spec: string, who: string): void => {
    const rel = insideDir(spec);
    if (typeof rel !== 'string') throw invalid(`${who} is ${JSON.stringify(spec)}: a file: dependency ${rel.error}`);
    if (!fileSet.has(rel)) {
      const isDir = files.some((f) => f.startsWith(`${rel}/`));
      throw invalid(
        isDir
          ? `${who} is ${JSON.stringify(spec)}, a directory: only file: tarballs are supported (make one with \`npm pack\` and point at the .tgz)`
          : `${who} is ${JSON.stringify(spec)}, but ${rel} is not in the function directory (dotfiles and node_modules are never uploaded)`,
      );
    }
    if (!tarballs.has(rel)) tarballs.set(rel, who);
  };

  for (const field of INSTALL_FIELDS) {
    const v = pkg[field];
    if (v === undefined) continue;
    const arrayField = field === 'bundleDependencies' || field === 'bundledDependencies';
    if (arrayField ? !(Array.isArray(v) || typeof v === 'boolean') : v === null || typeof v !== 'object' || Array.isArray(v)) {
      throw invalid(`package.json: "${field}" must be ${arrayField ? 'an array of names' : 'an object'}`);
    }
  }
  for (const field of DEP_FIELDS) {
    const deps = (pkg[field] ?? {}) as Record<string, unknown>;
    for (const [name, spec] of Object.entries(deps)) {
      const who = `package.json: ${field}.${name}`;
      if (!PACKAGE_NAME_RE.test(name)) throw invalid(`${who}: ${JSON.stringify(name)} is not a valid package name`);
      if (typeof spec !== 'string') throw invalid(`${who} must be a version range string`);
      if (spec.startsWith('file:')) addTarball(spec, who);
      else if (spec.startsWith('link:') || spec.startsWith('workspace:')) throw invalid(`${who} is ${JSON.stringify(spec)}: links and workspaces are not supported; use a registry version or a file: tarball`);
      else if (REMOTE_RE.test(spec)) throw invalid(`${who} is ${JSON.stringify(spec)}: Lamina installs from the package registry and file: tarballs only (the installer reaches no other host)`);
      if (!dependencies.includes(name)) dependencies.push(name);
    }
  }
  if (dependencies.length === 0) return undefined;

  const packageJson: Record<string, unknown> = { name: ROOT_NAME, version: '1.0.0', private: true };
  for (const field of INSTALL_FIELDS) if (pkg[field] !== undefined) packageJson[field] = pkg[field];

  let lockfile: Record<string, unknown> | undefined;
  const lockName = LOCKFILES.find((f) => fileSet.has(f));
  if (lockName) {
    lockfile = await readJson(path.join(srcDir, lockName), lockName);
    const version = lockfile.lockfileVersion;
    if (typeof version !== 'number' || version < 2) throw invalid(`${lockName}: lockfileVersion ${JSON.stringify(version)} is too old; regenerate it with npm 7 or later`);
    const packages = lockfile.packages;
    if (packages === null || typeof packages !== 'object' || Array.isArray(packages)) throw invalid(`${lockName}: has no "packages" object`);
    lockfile = normalizeLockfile(lockfile);
    // npm ci checks package.json against the lockfile's root, dev dependencies included (it installs none of them: --omit=dev).
    if (pkg.devDependencies !== undefined) packageJson.devDependencies = pkg.devDependencies;
    for (const [where, entry] of Object.entries(lockfile.packages as Record<string, Record<string, unknown>>)) {
      if (where === '' || entry === null || typeof entry !== 'object') continue;
      if (entry.link === true) throw invalid(`${lockName}: ${where} is a link (a file: directory or workspace): only file: tarballs are supported`);
      const resolved = entry.resolved;
      if (typeof resolved === 'string' && resolved.startsWith('file:') && entry.dev !== true) addTarball(resolved, `${lockName}: ${where}`);
    }
  }

  const hash = createHash('sha256');
  const put = (label: string, data: string | Buffer): void => {
    hash.update(`${label}\0${Buffer.byteLength(data)}\0`);
    hash.update(data);
  };
  put('format', String(INSTALL_FORMAT));
  put('node', runtime.node);
  put('package.json', stableJson(packageJson));
  if (lockfile) put('lockfile', stableJson(lockfile));
  else put('npm', runtime.npmVersion);
  const fileList = [...tarballs.keys()].sort();
  for (const rel of fileList) put(`file:${rel}`, await fs.readFile(path.join(srcDir, rel)));

  return {
    hash: hash.digest('hex'),
    packageJson,
    lockfile,
    files: fileList.map((rel) => ({ rel, abs: path.join(srcDir, ...rel.split('/')) })),
    dependencies,
  };
}

/** The lockfile with the root package's name and version replaced, so they do not split the cache. */
function normalizeLockfile(lock: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...lock, name: ROOT_NAME, version: '1.0.0' };
  const packages = { ...(lock.packages as Record<string, unknown>) };
  const root = packages[''];
  if (root && typeof root === 'object') {
    const r: Record<string, unknown> = { ...(root as Record<string, unknown>), name: ROOT_NAME, version: '1.0.0' };
    // npm ci compares the root's declared dependencies with package.json; keep only what our package.json has.
    delete r.license;
    delete r.bin;
    delete r.engines;
    delete r.funding;
    packages[''] = r;
  }
  out.packages = packages;
  delete out.dependencies; // lockfile v2's v1 mirror; npm 7+ reads "packages"
  return out;
}

/** JSON with object keys sorted (the hash must not depend on key order). */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
