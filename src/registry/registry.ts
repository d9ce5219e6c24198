// The registry: immutable function versions (rows in the store, code in the
// content-addressed code dir) and an in-memory map of current versions for
// the invoke hot path.
//
// Version numbers are never reused: `remove` keeps the functions row as a
// tombstone (current_version = null) with its next_version, so a redeploy
// after a delete continues the sequence. Code dirs are left on disk after a
// remove (other versions may share them); reclaiming them is a GC's job.
//
// Embedded mode assumes one process owns the data dir: the current map is
// loaded at open and updated by this instance's own deploys and removes.
// Cluster mode (src/cluster/) shares the database between processes: it calls
// `refresh` when another process changed a function, publishes each version's
// code before the version commits (`publishCode`), and hears of this
// instance's own commits (`onChange`) to tell the others.
import { EventEmitter } from 'node:events';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Db } from '../store/db.js';
import type { VersionsTable } from '../store/schema.js';
import { LaminaError } from '../errors.js';
import { PackageCache, type AcquiredPackages, type PackageEntry } from '../packages/cache.js';
import { installerOptionsFromEnv, type InstallerOptions } from '../packages/installer.js';
import { extractArchive, type ArchiveLimits } from './archive.js';
import { CodeStore, type StoredCode } from './codestore.js';
import { compileFunction } from './compile.js';
import { listFiles, removeTree } from './files.js';
import { parseManifest, validateFunctionName } from './manifest.js';
import { OL_YAML_FILE, olYamlToManifest } from './ol-yaml.js';
import type { FunctionSummary, FunctionVersion, Manifest, RegistryEvents } from './types.js';

type EventArgs = { [K in keyof RegistryEvents]: Parameters<RegistryEvents[K]> };

export interface DeployOptions {
  /** The name to deploy under; must equal the manifest's `name` if it has one. */
  name?: string;
  /** A check by the caller (e.g. can this node run the sandbox tier?); returns why not, or undefined. Runs before anything is stored. */
  validate?: (m: Manifest) => string | undefined;
}

export interface VersionInfo {
  version: number;
  codeHash: string;
  createdAt: string;
}

export interface RegistryOptions {
  archiveLimits?: ArchiveLimits;
  /** Called with a version's stored code (and its package-cache entry, if any) after they are on disk and before the version commits (cluster mode: copy them to the shared store). */
  publishCode?: (code: StoredCode, packages?: PackageEntry) => Promise<void>;
  /** Called after this instance committed a deploy or remove of `name`. */
  onChange?: (name: string) => void;
  /** Dependency installs (src/packages); default: limits and registry from LAMINA_* variables. */
  packages?: InstallerOptions;
}

export interface RefreshOptions {
  /** Runs before a version found in the database becomes current here; if it rejects, the version is left for a later refresh. */
  prepare?: (fv: FunctionVersion) => Promise<void>;
}

interface CurrentEntry {
  fn: FunctionVersion;
  updatedAt: string;
}

const MANIFEST_FILE = 'lamina.json';

export class Registry extends EventEmitter<EventArgs> {
  private readonly currentByName = new Map<string, CurrentEntry>();
  /** Serializes the commit step of deploy/remove so the map and events follow commit order. */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly db: Db,
    private readonly code: CodeStore,
    readonly archiveLimits: ArchiveLimits,
    private readonly opts: RegistryOptions,
    /** Installed dependency sets, shared by versions (src/packages). */
    readonly packages: PackageCache,
  ) {
    super();
  }

  static async open(db: Db, dataDir: string, opts: RegistryOptions = {}): Promise<Registry> {
    const code = new CodeStore(path.resolve(dataDir));
    await code.init();
    const packages = await PackageCache.open(path.resolve(dataDir), opts.packages ?? installerOptionsFromEnv());
    const reg = new Registry(db, code, opts.archiveLimits ?? {}, opts, packages);
    for (const e of await reg.readCurrent()) reg.currentByName.set(e.fn.name, e);
    return reg;
  }

  /** Current versions as the database has them (all, or those of `names`). */
  private async readCurrent(names?: string[]): Promise<CurrentEntry[]> {
    if (names && names.length === 0) return [];
    let q = this.db.kysely
      .selectFrom('functions')
      .innerJoin('versions', (j) =>
        j.onRef('versions.name', '=', 'functions.name').onRef('versions.version', '=', 'functions.current_version'),
      )
      .selectAll('versions')
      .select('functions.updated_at');
    if (names) q = q.where('functions.name', 'in', names);
    const rows = await q.execute();
    return rows.map((row) => ({ fn: this.toVersion(row), updatedAt: row.updated_at }));
  }

  /**
   * Brings the in-memory map up to date with the database, for `names` or for
   * every function: newer versions become current (event `deployed`), functions
   * gone from the database are dropped (event `removed`). Versions only move
   * forward, so a refresh racing a newer local deploy never undoes it.
   */
  async refresh(names?: string[], opts: RefreshOptions = {}): Promise<void> {
    const ready = new Set<string>();
    if (opts.prepare) {
      // The slow part (e.g. fetching code) runs outside the commit lock.
      for (const e of await this.readCurrent(names)) {
        const cur = this.currentByName.get(e.fn.name);
        if (cur && cur.fn.version >= e.fn.version) continue;
        try {
          await opts.prepare(e.fn);
          ready.add(`${e.fn.name}@${e.fn.version}`);
        } catch {
          // Left as it is; the caller hears of the failure through its own prepare.
        }
      }
    }
    await this.exclusive(async () => {
      const rows = await this.readCurrent(names);
      const seen = new Set<string>();
      for (const e of rows) {
        seen.add(e.fn.name);
        const cur = this.currentByName.get(e.fn.name);
        if (cur && cur.fn.version >= e.fn.version) {
          if (cur.fn.version === e.fn.version) cur.updatedAt = e.updatedAt;
          continue;
        }
        if (opts.prepare && !ready.has(`${e.fn.name}@${e.fn.version}`)) continue;
        this.currentByName.set(e.fn.name, e);
        this.emit('deployed', e.fn);
      }
      for (const name of names ?? [...this.currentByName.keys()]) {
        if (!seen.has(name) && this.currentByName.delete(name)) this.emit('removed', name);
      }
    });
  }

  /** The current version, from memory (called on every invocation). */
  current(name: string): FunctionVersion | undefined {
    return this.currentByName.get(name)?.fn;
  }

  list(): FunctionSummary[] {
    return [...this.currentByName.values()]
      .map(({ fn, updatedAt }) => ({
        name: fn.name,
        version: fn.version,
        runtime: fn.manifest.runtime,
        memoryMb: fn.manifest.memoryMb,
        sandbox: fn.manifest.sandbox,
        codeHash: fn.codeHash,
        updatedAt,
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async getVersion(name: string, version: number): Promise<FunctionVersion | undefined> {
    const row = await this.db.kysely
      .selectFrom('versions')
      .selectAll()
      .where('name', '=', name)
      .where('version', '=', version)
      .executeTakeFirst();
    return row ? this.toVersion(row) : undefined;
  }

  async describe(name: string): Promise<{ current: FunctionVersion; versions: VersionInfo[] } | undefined> {
    const current = this.current(name);
    if (!current) return undefined;
    const rows = await this.db.kysely
      .selectFrom('versions')
      .select(['version', 'code_hash', 'created_at'])
      .where('name', '=', name)
      .orderBy('version')
      .execute();
    return {
      current,
      versions: rows.map((r) => ({ version: r.version, codeHash: r.code_hash, createdAt: r.created_at })),
    };
  }

  /** Validates, compiles and stores a function directory as the function's new current version. */
  async deployDir(dir: string, opts: DeployOptions = {}): Promise<FunctionVersion> {
    const root = path.resolve(dir);
    const st = await fs.stat(root).catch(() => undefined);
    if (!st?.isDirectory()) throw new LaminaError('InvalidFunction', `${dir} is not a directory`);
    if (opts.name !== undefined) validateFunctionName(opts.name);

    const files = await listFiles(root, { skipIgnored: true });
    const { raw, source } = await readManifestFile(root, files);
    const manifest = withSource(source, () => parseManifest(raw, { dirName: opts.name ?? path.basename(root), files }));
    if (opts.name !== undefined && manifest.name !== opts.name) {
      throw new LaminaError(
        'InvalidFunction',
        `${MANIFEST_FILE}: "name" is "${manifest.name}" but the function is being deployed as "${opts.name}": ` +
          `make them match or drop "name" from ${MANIFEST_FILE}`,
      );
    }
    for (const key of ['onSuccess', 'onFailure'] as const) {
      const target = manifest.async?.[key];
      if (target && target !== manifest.name && !this.current(target)) {
        throw new LaminaError('InvalidFunction', `${MANIFEST_FILE}: "async.${key}" names function "${target}", which does not exist (deploy it first)`);
      }
    }
    const problem = opts.validate?.(manifest);
    if (problem) throw new LaminaError('InvalidFunction', `${MANIFEST_FILE}: ${problem}`);

    // Declared dependencies are installed (or found) in the package cache first;
    // the entry stays pinned against GC until the version has committed.
    const plan = manifest.runtime === 'node' ? await this.packages.plan(root, files) : await this.packages.planPython(root, files);
    const deps: AcquiredPackages | undefined = plan ? await this.packages.acquire(plan, manifest.name) : undefined;
    try {
      // The slow part (compile, hash, fsync) runs outside the commit lock.
      const staging = await this.code.makeTemp('build-');
      let stored: StoredCode;
      let codeEntry: string;
      try {
        ({ codeEntry } = await compileFunction(root, manifest, files, staging, deps && { nodeModules: deps.entry.nodeModules, names: deps.plan.dependencies, modules: deps.entry.modules }));
        stored = await this.code.commit(staging);
      } finally {
        await removeTree(staging);
      }
      if (this.opts.publishCode) await this.opts.publishCode(stored, deps?.entry);
      return await this.exclusive(() => this.commitVersion(manifest, stored, codeEntry, deps?.entry.hash));
    } finally {
      deps?.release();
    }
  }

  /**
   * A new current version made of a stored version's code and manifest, the
   * manifest changed by `change` if given (rollback; configuration updates).
   * Only settings that do not shape the compiled code may change (memory,
   * timeout, env...): entry, handler, runtime and sandbox need a deploy.
   */
  async redeploy(name: string, fromVersion: number, change?: (m: Manifest) => Manifest, opts: Pick<DeployOptions, 'validate'> = {}): Promise<FunctionVersion> {
    const from = await this.getVersion(name, fromVersion);
    if (!from) throw new LaminaError('NotFound', `function "${name}" has no version ${fromVersion}`);
    // The changed manifest goes through the same validation as a deploy's (its entry is known to exist).
    const manifest = change ? parseManifest(change(structuredClone(from.manifest)), { dirName: name, files: [from.manifest.entry] }) : from.manifest;
    for (const k of ['name', 'runtime', 'entry', 'handler', 'sandbox'] as const) {
      if (manifest[k] !== from.manifest[k]) throw new LaminaError('BadRequest', `"${k}" cannot change without new code: deploy the function again`);
    }
    const problem = opts.validate?.(manifest);
    if (problem) throw new LaminaError('InvalidFunction', `${MANIFEST_FILE}: ${problem}`);
    const stored: StoredCode = { hash: from.codeHash, dir: from.codeDir, sizeBytes: from.sizeBytes };
    return this.exclusive(() => this.commitVersion(manifest, stored, from.codeEntry, from.packagesHash));
  }

  /** Which stored versions use each package-cache entry (for GC and `GET /packages`). */
  async packageUsage(): Promise<Map<string, { name: string; version: number; current: boolean }[]>> {
    const rows = await this.db.kysely
      .selectFrom('versions')
      .innerJoin('functions', 'functions.name', 'versions.name')
      .select(['versions.name', 'versions.version', 'versions.packages_hash', 'functions.current_version'])
      .where('versions.packages_hash', 'is not', null)
      .orderBy('versions.name')
      .orderBy('versions.version')
      .execute();
    const out = new Map<string, { name: string; version: number; current: boolean }[]>();
    for (const r of rows) {
      const list = out.get(r.packages_hash!) ?? [];
      list.push({ name: r.name, version: r.version, current: r.current_version === r.version });
      out.set(r.packages_hash!, list);
    }
    return out;
  }

  /** Deploys an uploaded .tar.gz of a function directory under `name`. */
  async deployArchive(buf: Buffer, name: string, opts: Omit<DeployOptions, 'name'> = {}): Promise<FunctionVersion> {
    validateFunctionName(name);
    const tmp = await this.code.makeTemp('upload-');
    try {
      const root = await extractArchive(buf, path.join(tmp, 'src'), this.archiveLimits);
      return await this.deployDir(root, { ...opts, name });
    } finally {
      await removeTree(tmp);
    }
  }

  /** Deletes a function and all its versions. False when there was no such function. */
  async remove(name: string): Promise<boolean> {
    return this.exclusive(async () => {
      const now = new Date().toISOString();
      const removed = await this.db.kysely.transaction().execute(async (trx) => {
        const res = await trx
          .updateTable('functions')
          .set({ current_version: null, updated_at: now })
          .where('name', '=', name)
          .where('current_version', 'is not', null)
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) === 0) return false;
        await trx.deleteFrom('versions').where('name', '=', name).execute();
        return true;
      });
      if (removed) {
        this.currentByName.delete(name);
        this.emit('removed', name);
        this.opts.onChange?.(name);
      }
      return removed;
    });
  }

  private async commitVersion(manifest: Manifest, stored: StoredCode, codeEntry: string, packagesHash?: string): Promise<FunctionVersion> {
    const now = new Date().toISOString();
    const name = manifest.name;
    const version = await this.db.kysely.transaction().execute(async (trx) => {
      await trx
        .insertInto('functions')
        .values({ name, current_version: null, next_version: 1, created_at: now, updated_at: now })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      // One statement takes the number and makes it current; on PostgreSQL the
      // row lock it takes orders concurrent deploys of the same function.
      const row = await trx
        .updateTable('functions')
        .set((eb) => ({
          current_version: eb.ref('next_version'),
          next_version: eb('next_version', '+', 1),
          updated_at: now,
        }))
        .where('name', '=', name)
        .returning('current_version')
        .executeTakeFirstOrThrow();
      const v = row.current_version;
      if (v === null) throw new LaminaError('InternalError', `no version number assigned to ${name}`);
      await trx
        .insertInto('versions')
        .values({
          name,
          version: v,
          code_hash: stored.hash,
          manifest: JSON.stringify(manifest),
          code_entry: codeEntry,
          size_bytes: stored.sizeBytes,
          created_at: now,
          packages_hash: packagesHash ?? null,
        })
        .execute();
      return v;
    });
    const fn: FunctionVersion = {
      name,
      version,
      codeHash: stored.hash,
      manifest,
      codeDir: stored.dir,
      codeEntry,
      sizeBytes: stored.sizeBytes,
      createdAt: now,
      ...(packagesHash ? { packagesHash, packagesDir: this.packages.contentDirFor(packagesHash, manifest.runtime) } : {}),
    };
    this.currentByName.set(name, { fn, updatedAt: now });
    this.emit('deployed', fn);
    this.opts.onChange?.(name);
    return fn;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn); // tail never rejects
    this.tail = run.catch(() => undefined);
    return run;
  }

  private toVersion(row: VersionsTable): FunctionVersion {
    const manifest = JSON.parse(row.manifest) as Manifest;
    return {
      name: row.name,
      version: row.version,
      codeHash: row.code_hash,
      manifest,
      codeDir: this.code.dirFor(row.code_hash),
      codeEntry: row.code_entry,
      sizeBytes: row.size_bytes,
      createdAt: row.created_at,
      ...(row.packages_hash ? { packagesHash: row.packages_hash, packagesDir: this.packages.contentDirFor(row.packages_hash, manifest.runtime) } : {}),
    };
  }
}

/** Runs parseManifest; errors about a manifest read from ol.yaml say so (its fields were mapped to lamina.json's). */
function withSource<T>(source: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (source !== MANIFEST_FILE && err instanceof LaminaError && err.message.startsWith(`${MANIFEST_FILE}: `)) {
      throw new LaminaError(err.type, `${source} (read as lamina.json fields): ${err.message.slice(MANIFEST_FILE.length + 2)}`);
    }
    throw err;
  }
}

/** The parsed lamina.json; else OpenLambda's ol.yaml turned into the same shape; else {}. */
async function readManifestFile(root: string, files: readonly string[]): Promise<{ raw: unknown; source: string }> {
  let text: string;
  try {
    text = await fs.readFile(path.join(root, MANIFEST_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new LaminaError('InvalidFunction', `${MANIFEST_FILE}: cannot read it (${(err as Error).message})`);
    if (!files.includes(OL_YAML_FILE)) return { raw: {}, source: MANIFEST_FILE };
    let yaml: string;
    try {
      yaml = await fs.readFile(path.join(root, OL_YAML_FILE), 'utf8');
    } catch (e) {
      throw new LaminaError('InvalidFunction', `${OL_YAML_FILE}: cannot read it (${(e as Error).message})`);
    }
    return { raw: olYamlToManifest(yaml), source: OL_YAML_FILE };
  }
  try {
    return { raw: JSON.parse(text.replace(/^\uFEFF/, '')) as unknown, source: MANIFEST_FILE }; // editors on Windows add a BOM
  } catch (err) {
    throw new LaminaError('InvalidFunction', `${MANIFEST_FILE}: invalid JSON (${(err as Error).message})`);
  }
}
