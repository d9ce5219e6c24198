// File-tree helpers for installs and cache entries: sizes, sealing read-only,
// removal.
import fs from 'node:fs/promises';
import path from 'node:path';
import { removeTree } from '../registry/files.js';

export interface TreeStats {
  /** Sum of regular files' sizes. */
  bytes: number;
  files: number;
  /** Set when the tree holds something an install must not produce (device files, links leaving it). */
  problem?: string;
}

/** Walks a tree (never following links). */
export async function dirStats(root: string, opts: { refuseOutsideLinks?: boolean }): Promise<TreeStats> {
  const out: TreeStats = { bytes: 0, files: 0 };
  const base = path.resolve(root);
  async function walk(dir: string): Promise<void> {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        out.files++;
        out.bytes += (await fs.lstat(p).catch(() => ({ size: 0 }))).size;
      } else if (e.isSymbolicLink()) {
        if (!opts.refuseOutsideLinks) continue;
        const target = await fs.readlink(p);
        const resolved = path.resolve(path.dirname(p), target);
        if (path.isAbsolute(target) || !(resolved === base || resolved.startsWith(base + path.sep))) {
          out.problem ??= `a link leaving node_modules (${path.relative(base, p)} -> ${target})`;
        }
      } else if (opts.refuseOutsideLinks) {
        out.problem ??= `a special file (${path.relative(base, p)})`;
      }
    }
  }
  await walk(base);
  return out;
}

/**
 * Makes a tree read-only for everyone and owned by this process: files 0444
 * (0555 when executable; setuid/setgid bits dropped), directories 0555.
 */
export async function sealTree(root: string): Promise<void> {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const asRoot = uid === 0;
  async function walk(dir: string): Promise<void> {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isSymbolicLink()) {
        if (asRoot) await fs.lchown(p, uid, gid);
      } else {
        const st = await fs.lstat(p);
        if (asRoot) await fs.chown(p, uid, gid);
        await fs.chmod(p, st.mode & 0o111 ? 0o555 : 0o444);
      }
    }
    if (asRoot) await fs.chown(dir, uid, gid);
    await fs.chmod(dir, 0o555);
  }
  await walk(root);
}

/** rm -rf, also of sealed (read-only) trees. */
export function removeAll(dir: string): Promise<void> {
  return removeTree(dir).catch(() => undefined);
}
