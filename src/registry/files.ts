// Directory walking shared by deploy, compile and the code store.
import fs from 'node:fs/promises';
import path from 'node:path';

/** Names never part of a function's source: dependency trees, VCS/editor dotfiles, bytecode caches. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || name === 'node_modules' || name === '__pycache__';
}

export interface WalkOptions {
  /** Skip names for which isIgnoredName is true. */
  skipIgnored: boolean;
  /** Include symlinks that point at regular files (as files); otherwise every symlink is skipped. */
  followFileLinks?: boolean;
}

/** Regular files under `root`, as sorted relative posix paths. Symlinked directories are never entered (no loops, no escapes). */
export async function listFiles(root: string, opts: WalkOptions): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    const entries = await fs.readdir(path.join(root, rel), { withFileTypes: true });
    for (const e of entries) {
      if (opts.skipIgnored && isIgnoredName(e.name)) continue;
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(childRel);
      else if (e.isFile()) out.push(childRel);
      else if (e.isSymbolicLink() && opts.followFileLinks) {
        const st = await fs.stat(path.join(root, childRel)).catch(() => undefined);
        if (st?.isFile()) out.push(childRel);
      }
    }
  }
  await walk('');
  return out.sort();
}

/** rm -rf that also works on trees made read-only (0555 dirs) when not running as root. */
export async function removeTree(dir: string): Promise<void> {
  try {
    await fs.rm(dir, { recursive: true, force: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES' && (err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    await makeWritable(dir);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function makeWritable(dir: string): Promise<void> {
  await fs.chmod(dir, 0o755);
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) await makeWritable(path.join(dir, e.name));
  }
}
