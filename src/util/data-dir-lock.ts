// One server per data dir: two processes writing the same SQLite database and
// code store would corrupt each other's view. The lock is a file created
// exclusively, holding the owner's pid and its start time (from /proc), so a
// lock left by a crashed or killed server is recognized as stale (its pid is
// gone, or now belongs to another process) and taken over.
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

export const LOCK_FILE = 'server.lock';

interface Owner {
  pid: number;
  /** The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or null where /proc is absent. */
  start: string | null;
  url?: string;
}

function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // A zombie has exited (its parent has not reaped it yet): it holds nothing.
    if (fields[0] === 'Z') return 'exited';
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function alive(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // Alive, but pids are reused: it is the owner only if it started when the owner did.
  return owner.start === null || startTime(owner.pid) === owner.start;
}

export class DataDirLockedError extends Error {}

export interface DataDirLock {
  /** Records where the server listens (shown to a second `lamina up`). */
  setUrl(url: string): void;
  release(): void;
}

export function lockDataDir(dataDir: string): DataDirLock {
  const file = path.join(dataDir, LOCK_FILE);
  const me: Owner = { pid: process.pid, start: startTime(process.pid) };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw err;
    }
    let owner: Owner | undefined;
    try {
      owner = JSON.parse(readFileSync(file, 'utf8')) as Owner;
    } catch {
      owner = undefined; // unreadable or half-written: treated as stale
    }
    if (owner && typeof owner.pid === 'number' && alive(owner)) {
      throw new DataDirLockedError(
        `another Lamina server (pid ${owner.pid}${owner.url ? `, ${owner.url}` : ''}) is using the data dir ${dataDir}; stop it first, or use another --data-dir`,
      );
    }
    rmSync(file, { force: true });
  }
  let released = false;
  return {
    setUrl(url) {
      me.url = url;
      try {
        const fd = openSync(file, 'w');
        writeSync(fd, JSON.stringify(me));
        closeSync(fd);
      } catch {
        // informational only
      }
    },
    release() {
      if (released) return;
      released = true;
      rmSync(file, { force: true });
    },
  };
}
