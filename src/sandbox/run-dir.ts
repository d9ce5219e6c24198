// A per-server scratch directory for sandboxes: a private copy of each runtime
// file and one folder per sandbox. It lives under the system temp dir, not the
// data dir, because sandboxes run as unprivileged uids that must be able to
// traverse to their files (a data dir under /root would not let them).
// Other local users can traverse the root but list nothing: each sandbox's
// folder has an unguessable name and is 0700, owned by the sandbox's uid.
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runtimeFile } from '../util/paths.js';
import { RUN_DIR_PREFIX } from './leftovers.js';
import type { RuntimeName } from './types.js';

export class RunDir {
  readonly root: string;
  private runtimes = new Map<RuntimeName, string>();

  /** The owner's pid is in the name, so a later start can sweep the dirs of dead servers (leftovers.ts). */
  constructor(prefix = `${RUN_DIR_PREFIX}${process.pid}-`) {
    this.root = mkdtempSync(path.join(os.tmpdir(), prefix));
    chmodSync(this.root, 0o711);
  }

  /** The read-only copy of a runtime's program inside the run dir. */
  runtime(name: RuntimeName): string {
    let file = this.runtimes.get(name);
    if (file) return file;
    const dir = path.join(this.root, 'runtime');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const src = runtimeFile(name);
    file = path.join(dir, path.basename(src));
    copyFileSync(src, file);
    chmodSync(file, 0o444);
    this.runtimes.set(name, file);
    return file;
  }

  /** A fresh, private directory for one sandbox; `owner` (the sandbox's uid, when Lamina is root) is the only other uid that may enter it. */
  sandboxDir(id: string, owner?: number): string {
    const dir = path.join(this.root, `${id}-${randomBytes(9).toString('base64url')}`);
    mkdirSync(dir, { mode: 0o700 });
    if (owner !== undefined && process.getuid?.() === 0) chownSync(dir, owner, owner);
    return dir;
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
