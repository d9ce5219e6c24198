// The content-addressed package cache: DATA_DIR/packages/<hash>/ holds one
// installed dependency set (node_modules, the package.json and lockfile it was
// installed from, entry.json with its size and contents), read-only, shared by
// every function version whose install inputs hash the same (plan.ts).
//
// An install runs in a temporary dir (installer.ts), is verified, sealed
// read-only and renamed into place, so an entry is either complete or absent.
// Concurrent deploys of the same set share one install. Entries are pinned while
// a deploy that uses them has not committed yet, so garbage collection (which
// removes entries no stored version refers to) never takes one from under it.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { LaminaError, isLaminaError } from '../errors.js';
import { dropPackageViews } from '../sandbox/packages.js';
import { Installer, type InstallerOptions, type InstallProgress } from './installer.js';
import { SITE_PACKAGES } from './pip.js';
import { planPythonPackages } from './pip-plan.js';
import { planPackages, type PackagePlan } from './plan.js';
import { removeAll, sealTree } from './tree.js';

/** Staging dirs older than this are leftovers of a crashed process. */
const STALE_TMP_MS = 60 * 60 * 1000;
const ENTRY_FILE = 'entry.json';
const HASH_RE = /^[0-9a-f]{64}$/;

export interface PackageEntry {
  hash: string;
  /** DATA_DIR/packages/<hash> */
  dir: string;
  /** "npm" (node_modules) or "pip" (site-packages, a Python function's requirements.txt). */
  ecosystem: 'npm' | 'pip';
  /** The installed tree: DIR/node_modules, or DIR/site-packages for pip. */
  nodeModules: string;
  /** pip: the requirements' importable top-level modules (what pre-started runtimes import). */
  modules?: string[];
  sizeBytes: number;
  files: number;
  /** Direct dependencies as declared. */
  dependencies: string[];
  /** Everything installed, name and version. */
  packages: { name: string; version: string }[];
  /** Whether the function supplied the lockfile (else npm resolved and its lockfile is kept here). */
  lockfileProvided: boolean;
  createdAt: string;
  installMs: number;
  /** The function whose deploy installed it. */
  installedFor: string;
  skippedScripts: string[];
}

export interface InstallInProgress {
  hash: string;
  function: string;
  startedAt: string;
  elapsedMs: number;
  phase: InstallProgress['phase'] | 'storing';
  bytes: number;
  lastLine: string;
}

/** What a deploy holds while it compiles and commits against an entry. */
export interface AcquiredPackages {
  entry: PackageEntry;
  plan: PackagePlan;
  /** False when the entry was already in the cache (no install ran). */
  installed: boolean;
  /** Time this deploy spent waiting for the install (0 on a cache hit). */
  installMs: number;
  /** Unpins the entry; call once the version is committed (or the deploy failed). */
  release(): void;
}

interface InstallState {
  function: string;
  started: number;
  progress: { phase: InstallInProgress['phase']; bytes: number; lastLine: string };
}

export interface GcResult {
  removed: { hash: string; sizeBytes: number }[];
  freedBytes: number;
  kept: number;
}

export class PackageCache {
  readonly tmpRoot: string;
  private readonly inflight = new Map<string, Promise<PackageEntry>>();
  private readonly pins = new Map<string, number>();
  private readonly installing = new Map<string, InstallState>();
  /** Serializes GC against the check-and-pin step of acquire. */
  private lock: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly root: string,
    readonly installer: Installer,
  ) {
    this.tmpRoot = path.join(root, '.tmp');
  }

  static async open(dataDir: string, opts: InstallerOptions = {}): Promise<PackageCache> {
    const cache = new PackageCache(path.join(path.resolve(dataDir), 'packages'), new Installer(opts));
    await fs.mkdir(cache.tmpRoot, { recursive: true, mode: 0o700 });
    const now = Date.now();
    for (const name of await fs.readdir(cache.tmpRoot)) {
      const p = path.join(cache.tmpRoot, name);
      const st = await fs.lstat(p).catch(() => undefined);
      if (st && now - st.mtimeMs > STALE_TMP_MS) await removeAll(p);
    }
    return cache;
  }

  dirFor(hash: string): string {
    return path.join(this.root, hash);
  }

  nodeModulesFor(hash: string): string {
    return path.join(this.root, hash, 'node_modules');
  }

  /** The installed tree of an entry: node_modules, or site-packages for a Python function's. */
  contentDirFor(hash: string, runtime: 'node' | 'python'): string {
    return path.join(this.root, hash, runtime === 'python' ? SITE_PACKAGES : 'node_modules');
  }

  /** The install plan of a function dir, or undefined when it declares no dependencies. */
  async plan(srcDir: string, files: readonly string[]): Promise<PackagePlan | undefined> {
    return planPackages(srcDir, files, await this.installer.identity());
  }

  /** The pip install plan of a Python function dir (requirements.txt), or undefined when it has none. */
  async planPython(srcDir: string, files: readonly string[]): Promise<PackagePlan | undefined> {
    if (!files.includes('requirements.txt')) return undefined;
    return planPythonPackages(srcDir, files, await this.installer.pythonIdentity(), this.installer.pipIndexKey());
  }

  /**
   * The cache entry for `plan`, installed now unless present. Pinned until
   * `release`. Throws InvalidFunction when the install fails.
   */
  async acquire(plan: PackagePlan, functionName: string): Promise<AcquiredPackages> {
    const started = performance.now();
    let pinned = false;
    const pin = () => {
      pinned = true;
      this.pins.set(plan.hash, (this.pins.get(plan.hash) ?? 0) + 1);
    };
    const release = () => {
      if (!pinned) return;
      pinned = false;
      const n = (this.pins.get(plan.hash) ?? 1) - 1;
      if (n <= 0) this.pins.delete(plan.hash);
      else this.pins.set(plan.hash, n);
    };
    // Pin under the lock: a GC running now finishes first, one starting later sees the pin.
    const existing = await this.exclusive(async () => {
      pin();
      return this.get(plan.hash);
    });
    if (existing) return { entry: existing, plan, installed: false, installMs: 0, release };
    try {
      let p = this.inflight.get(plan.hash);
      const mine = !p;
      if (!p) {
        p = this.install(plan, functionName).finally(() => this.inflight.delete(plan.hash));
        this.inflight.set(plan.hash, p);
      }
      const entry = await p;
      return { entry, plan, installed: mine, installMs: performance.now() - started, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** The complete entry for `hash`, or undefined. */
  async get(hash: string): Promise<PackageEntry | undefined> {
    if (!HASH_RE.test(hash)) return undefined;
    const dir = this.dirFor(hash);
    let raw: string;
    try {
      raw = await fs.readFile(path.join(dir, ENTRY_FILE), 'utf8');
    } catch {
      return undefined;
    }
    try {
      const e = JSON.parse(raw) as Omit<PackageEntry, 'dir' | 'nodeModules' | 'hash' | 'ecosystem'> & { ecosystem?: 'pip' };
      const ecosystem = e.ecosystem ?? 'npm';
      return { ...e, ecosystem, hash, dir, nodeModules: path.join(dir, ecosystem === 'pip' ? SITE_PACKAGES : 'node_modules') };
    } catch {
      return undefined;
    }
  }

  async list(): Promise<PackageEntry[]> {
    const out: PackageEntry[] = [];
    for (const name of (await fs.readdir(this.root)).sort()) {
      const e = await this.get(name);
      if (e) out.push(e);
    }
    return out;
  }

  /** Installs running now, for progress displays. */
  inProgress(): InstallInProgress[] {
    const now = performance.now();
    return [...this.installing.entries()].map(([hash, i]) => ({
      hash,
      function: i.function,
      startedAt: new Date(Date.now() - (now - i.started)).toISOString(),
      elapsedMs: Math.round(now - i.started),
      phase: i.progress.phase,
      bytes: i.progress.bytes,
      lastLine: i.progress.lastLine,
    }));
  }

  /**
   * Removes every entry whose hash is not in `used` (the hashes stored versions
   * refer to), except entries pinned by a deploy in progress. Entries vanish
   * atomically (renamed away, then deleted).
   */
  gc(used: ReadonlySet<string>): Promise<GcResult> {
    return this.exclusive(async () => {
      const result: GcResult = { removed: [], freedBytes: 0, kept: 0 };
      for (const name of (await fs.readdir(this.root)).sort()) {
        if (!HASH_RE.test(name)) continue;
        if (used.has(name) || this.pins.has(name) || this.inflight.has(name)) {
          result.kept++;
          continue;
        }
        const entry = await this.get(name);
        const trash = path.join(this.tmpRoot, `gc-${name.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
        try {
          await fs.rename(this.dirFor(name), trash);
        } catch {
          continue;
        }
        await removeAll(trash);
        // Sandboxes' read-only views of it (hard links) would keep its bytes alive.
        await dropPackageViews(name);
        const sizeBytes = entry?.sizeBytes ?? 0;
        result.removed.push({ hash: name, sizeBytes });
        result.freedBytes += sizeBytes;
      }
      return result;
    });
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async install(plan: PackagePlan, functionName: string): Promise<PackageEntry> {
    const started = performance.now();
    const state: InstallState = { function: functionName, started, progress: { phase: 'preparing', bytes: 0, lastLine: '' } };
    this.installing.set(plan.hash, state);
    try {
      const tree = await this.installer.install(plan, (p: InstallProgress) => (state.progress = { ...p, lastLine: p.lastLine || state.progress.lastLine }));
      try {
        state.progress = { ...state.progress, phase: 'storing' };
        return await this.commit(plan, functionName, tree, started);
      } finally {
        await tree.cleanup();
      }
    } catch (err) {
      if (isLaminaError(err)) throw err;
      throw new LaminaError('InternalError', `installing dependencies failed: ${(err as Error).message}`);
    } finally {
      this.installing.delete(plan.hash);
    }
  }

  private async commit(plan: PackagePlan, functionName: string, tree: Awaited<ReturnType<Installer['install']>>, started: number): Promise<PackageEntry> {
    const staging = await fs.mkdtemp(path.join(this.tmpRoot, 'entry-'));
    try {
      const nm = path.join(staging, tree.content);
      try {
        await fs.rename(path.join(tree.dir, tree.content), nm);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        await fs.cp(path.join(tree.dir, tree.content), nm, { recursive: true, verbatimSymlinks: true });
      }
      if (plan.ecosystem === 'pip') await fs.writeFile(path.join(staging, 'requirements.txt'), plan.requirements ?? '');
      else await fs.writeFile(path.join(staging, 'package.json'), JSON.stringify(plan.packageJson, null, 2) + '\n');
      if (tree.lockfile) await fs.writeFile(path.join(staging, 'package-lock.json'), tree.lockfile);
      const meta: Omit<PackageEntry, 'dir' | 'nodeModules' | 'hash' | 'ecosystem'> & { ecosystem?: 'pip' } = {
        ...(plan.ecosystem === 'pip' ? { ecosystem: 'pip' as const, modules: tree.modules ?? [] } : {}),
        sizeBytes: tree.sizeBytes,
        files: tree.files,
        dependencies: plan.dependencies,
        packages: tree.packages,
        lockfileProvided: plan.lockfile !== undefined,
        createdAt: new Date().toISOString(),
        installMs: Math.round(performance.now() - started),
        installedFor: functionName,
        skippedScripts: tree.skippedScripts,
      };
      // entry.json last: its presence marks a complete entry.
      await fs.writeFile(path.join(staging, ENTRY_FILE), JSON.stringify(meta, null, 2) + '\n');
      await sealTree(staging);
      // Durable before visible (one syncfs rather than an fsync per file).
      spawnSync('sync', ['-f', staging], { stdio: 'ignore', timeout: 60_000 });
      const dest = this.dirFor(plan.hash);
      try {
        await fs.chmod(staging, 0o755); // renaming a dir to a new parent updates its "..", which needs write permission
        await fs.rename(staging, dest);
        await fs.chmod(dest, 0o555);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        // Another process installed the same set meanwhile: use that one.
      }
      const entry = await this.get(plan.hash);
      if (!entry) throw new Error(`the cache entry ${plan.hash} is missing after the install`);
      return entry;
    } finally {
      await removeAll(staging);
    }
  }
}
