// Read-only views of package-cache entries (src/packages) for the sandboxes of
// one server. The cache lives in the data dir, which sandbox uids usually cannot
// reach (a private home), so each entry a sandbox needs is mirrored once per
// server into the run dir: hard links (instant, no extra space; copies when the
// run dir is on another file system) of read-only files; sandboxes cannot write
// into the directories (other uids as root; Node's permission model and
// read-only mounts otherwise), which stay 0755 so the run dir can always be
// removed. A sandbox gets a
// `node_modules` link beside its code pointing at its entry's view.
//
// Isolation: a sandbox's tier lets it read the whole views directory (the
// process tier's allow-list and the container's mounts are fixed when a
// pre-started runtime spawns, before it knows its function), but the directory
// is 0711 (traversable, not listable) and each view has a random 128-bit name,
// so a sandbox can open only the view it was linked to. Packages are code from
// the registry, not secrets; a private file: package is as protected as that.
// (Without root, sandboxes share the server's uid and could list the directory.)
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { chmod, copyFile, link, mkdir, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { RunDir } from './run-dir.js';

const live = new Set<PackageViews>();

export class PackageViews {
  /** Host directory holding the views (0711). */
  readonly root: string;
  private readonly views = new Map<string, Promise<string>>();

  constructor(runDirRoot: string) {
    this.root = path.join(runDirRoot, 'packages');
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    live.add(this);
  }

  /** Removes the view of `hash` (its cache entry was garbage-collected: the hard links would keep its bytes). */
  async drop(hash: string): Promise<void> {
    const v = this.views.get(hash);
    if (!v) return;
    this.views.delete(hash);
    const nm = await v.catch(() => undefined);
    if (nm) await rm(path.dirname(nm), { recursive: true, force: true }).catch(() => undefined);
  }

  /**
   * The host path of the view of entry `hash` (its node_modules or site-packages dir), mirrored
   * from `src` (the entry's node_modules in the cache) on first use.
   */
  nodeModules(hash: string, src: string): Promise<string> {
    let v = this.views.get(hash);
    if (!v) {
      v = this.mirror(src);
      this.views.set(hash, v);
      v.catch(() => this.views.get(hash) === v && this.views.delete(hash));
    }
    return v;
  }

  private async mirror(src: string): Promise<string> {
    const name = randomBytes(16).toString('hex');
    const tmp = path.join(this.root, `.tmp-${name}`);
    const dir = path.join(this.root, name);
    try {
      await mkdir(tmp, { mode: 0o755 });
      // The view keeps the tree's name: node_modules, or site-packages for Python's.
      await linkTree(src, path.join(tmp, path.basename(src)));
      await rename(tmp, dir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(code === 'ENOENT' ? `the function's installed dependencies are missing from the package cache (${src}); redeploy it` : `cannot prepare the function's dependencies: ${(err as Error).message}`);
    }
    return path.join(dir, path.basename(src));
  }
}

/** Mirrors a tree: directories made here, files hard-linked (or copied, 0444), links re-created. */
async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to, { mode: 0o755 });
  const entries = await readdir(from, { withFileTypes: true });
  await Promise.all(
    entries.map(async (e) => {
      const src = path.join(from, e.name);
      const dst = path.join(to, e.name);
      if (e.isDirectory()) await linkTree(src, dst);
      else if (e.isSymbolicLink()) await symlink(await readlink(src), dst);
      else if (e.isFile()) {
        try {
          await link(src, dst);
        } catch {
          await copyFile(src, dst);
          await chmod(dst, 0o444);
        }
      }
    }),
  );
}

/** Drops the views of a cache entry in every run dir of this process (called by the package cache's GC). */
export async function dropPackageViews(hash: string): Promise<void> {
  await Promise.all([...live].map((v) => v.drop(hash)));
}

const byRunDir = new WeakMap<RunDir, PackageViews>();

/** The views of one run dir, shared by its tiers (so each entry is mirrored once). */
export function packageViews(runDir: RunDir): PackageViews {
  let v = byRunDir.get(runDir);
  if (!v) byRunDir.set(runDir, (v = new PackageViews(runDir.root)));
  return v;
}
