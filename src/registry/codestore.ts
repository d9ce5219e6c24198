// Content-addressed code directories: ${dataDir}/code/<sha256>/. A version's
// code is built in a staging dir under ${dataDir}/tmp (same filesystem) and
// renamed into place, so a crash leaves either nothing or a complete dir.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { listFiles, removeTree } from './files.js';

export interface StoredCode {
  hash: string;
  dir: string;
  sizeBytes: number;
}

/** Staging dirs older than this are leftovers of a crashed process. */
const STALE_TMP_MS = 60 * 60 * 1000;

export class CodeStore {
  readonly codeRoot: string;
  readonly tmpRoot: string;

  constructor(dataDir: string) {
    this.codeRoot = path.join(dataDir, 'code');
    this.tmpRoot = path.join(dataDir, 'tmp');
  }

  async init(): Promise<void> {
    await fs.mkdir(this.codeRoot, { recursive: true });
    await fs.mkdir(this.tmpRoot, { recursive: true });
    // Only old leftovers: another process may be deploying into tmp right now.
    const now = Date.now();
    for (const name of await fs.readdir(this.tmpRoot)) {
      const p = path.join(this.tmpRoot, name);
      const st = await fs.lstat(p).catch(() => undefined);
      if (st && now - st.mtimeMs > STALE_TMP_MS) await removeTree(p).catch(() => {});
    }
  }

  dirFor(hash: string): string {
    return path.join(this.codeRoot, hash);
  }

  /** A fresh private dir under tmp/; the caller removes it (removeTree). */
  makeTemp(prefix: string): Promise<string> {
    return fs.mkdtemp(path.join(this.tmpRoot, prefix));
  }

  /**
   * Moves a complete staging dir into the store under its content hash. When
   * that hash is already stored, the existing dir is reused and staging is left
   * for the caller to remove.
   */
  async commit(staging: string): Promise<StoredCode> {
    const files = await listFiles(staging, { skipIgnored: false });
    const hash = createHash('sha256');
    let sizeBytes = 0;
    for (const rel of files) {
      const data = await fs.readFile(path.join(staging, rel));
      // Length-prefixed so that (path, content) pairs cannot be confused across boundaries.
      hash.update(`${rel}\0${data.length}\0`);
      hash.update(data);
      sizeBytes += data.length;
    }
    const digest = hash.digest('hex');
    const dir = this.dirFor(digest);
    if (await exists(dir)) return { hash: digest, dir, sizeBytes };

    // Durable before visible: the rename must never publish unflushed files.
    for (const rel of files) {
      const fh = await fs.open(path.join(staging, rel), 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    // World-readable (sandboxes run as other uids), writable by nobody.
    for (const rel of files) await fs.chmod(path.join(staging, rel), 0o444);
    const subdirs = new Set(files.flatMap((f) => ancestors(f)));
    for (const d of [...subdirs].sort().reverse()) await fs.chmod(path.join(staging, d), 0o555);

    try {
      await fs.rename(staging, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A concurrent deploy of identical code won the race: reuse its dir.
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await exists(dir))) return { hash: digest, dir, sizeBytes };
      throw err;
    }
    // The top dir is chmodded after the rename: moving a directory to another
    // parent needs write permission on it (to update its "..").
    await fs.chmod(dir, 0o555);
    await syncDir(this.codeRoot);
    return { hash: digest, dir, sizeBytes };
  }
}

function ancestors(rel: string): string[] {
  const parts = rel.split('/').slice(0, -1);
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  } finally {
    await fh.close();
  }
}
