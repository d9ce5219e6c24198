// What a Lamina process killed outright (kill -9, OOM) leaves behind, and how
// it is cleared. A frozen sandbox ignores its parent-death signal and its
// closed channel until thawed, so two mechanisms bind sandboxes to their
// server's life:
//  - a reaper: a tiny shell process per server, outside every sandbox cgroup,
//    that waits for its server's end (EOF on a pipe, which no frozen task can
//    hold back) and then kills and thaws what the server's cgroups hold and
//    removes its run dir;
//  - a sweep at every start: any Lamina process clears the cgroups
//    `lamina-<pid>-*` and run dirs `lamina-run-<pid>-*` whose pid is dead (the
//    reaper's own leftovers if it was killed too). Only dead pids are touched:
//    other servers on the host keep theirs.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Run dirs are `<tmp>/lamina-run-<pid>-XXXXXX`, so a dead owner can be told from its name. */
export const RUN_DIR_PREFIX = 'lamina-run-';
const CGROUP_RE = /^lamina-(\d+)-\d+$/;
const RUN_DIR_RE = /^lamina-run-(\d+)-/;
/** How deep under a cgroup mount's root (or our own cgroup) parents are looked for. */
const MAX_DEPTH = 4;

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return true; // not a pid we could judge: leave it alone
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Directories that may hold `lamina-<pid>-<n>` cgroup parents: each cgroup mount's root and our own cgroup in it. */
export function cgroupBases(): string[] {
  const bases = new Set<string>();
  let mountinfo = '';
  let own = '';
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    own = readFileSync('/proc/self/cgroup', 'utf8');
  } catch {
    return [];
  }
  const ownPaths = new Map<string, string>();
  for (const line of own.trim().split('\n')) {
    const [, ctrls, p] = line.split(/:(.*?):/);
    if (p === undefined || ctrls === undefined) continue;
    if (ctrls === '') ownPaths.set('cgroup2', p);
    for (const c of ctrls.split(',')) if (c) ownPaths.set(c, p);
  }
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const [fstype, , superOpts] = post.split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const root = f[3]!;
    const dir = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    bases.add(dir);
    const key = fstype === 'cgroup2' ? 'cgroup2' : (superOpts ?? '').split(',').find((o) => ownPaths.has(o));
    const p = key ? ownPaths.get(key) : undefined;
    if (p && p !== '/') bases.add(path.join(dir, root !== '/' && p.startsWith(root) ? p.slice(root.length) : p));
  }
  return [...bases];
}

/** `lamina-<pid>-<n>` directories under `base` (a few levels deep) whose pid matches `owner`. */
function findParents(base: string, owner: (pid: number) => boolean, depth = 0, out: string[] = []): string[] {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(base, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const m = CGROUP_RE.exec(e.name);
    if (m) {
      if (owner(Number(m[1]))) out.push(path.join(base, e.name));
    } else if (depth < MAX_DEPTH && !e.name.startsWith('lamina-')) {
      findParents(path.join(base, e.name), owner, depth + 1, out);
    }
  }
  return out;
}

/** Every cgroup directory at or under `dir`, deepest first. */
function subtree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: import('node:fs').Dirent[] = [];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
    out.push(d);
  };
  walk(dir);
  return out;
}

function tryWrite(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch {
    /* not this hierarchy's file, or gone */
  }
}

function pidsIn(dir: string): number[] {
  try {
    return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export interface SweepReport {
  cgroups: number;
  processes: number;
  runDirs: number;
}

/** Kills, thaws and removes the cgroups and run dirs of dead Lamina processes. */
export async function sweepLeftovers(opts: { tmpDir?: string; bases?: string[]; /** Only these (dead) pids' leftovers. */ pids?: number[] } = {}): Promise<SweepReport> {
  const report: SweepReport = { cgroups: 0, processes: 0, runDirs: 0 };
  const dead = (pid: number) => pid !== process.pid && (!opts.pids || opts.pids.includes(pid)) && !pidAlive(pid);
  const dirs = [...new Set((opts.bases ?? cgroupBases()).flatMap((b) => findParents(b, dead)))].flatMap(subtree);
  if (dirs.length > 0) {
    // Kill everything first (in every hierarchy), then thaw: a frozen task dies once thawed (v1);
    // v2 kills frozen tasks directly, and cgroup.kill takes forks too.
    for (const d of dirs) {
      for (const pid of pidsIn(d)) {
        try {
          process.kill(pid, 'SIGKILL');
          report.processes++;
        } catch {
          /* gone */
        }
      }
      if (existsSync(path.join(d, 'cgroup.kill'))) tryWrite(path.join(d, 'cgroup.kill'), '1');
    }
    for (const d of dirs) {
      if (existsSync(path.join(d, 'freezer.state'))) tryWrite(path.join(d, 'freezer.state'), 'THAWED');
      if (existsSync(path.join(d, 'cgroup.freeze'))) tryWrite(path.join(d, 'cgroup.freeze'), '0');
    }
    const deadline = Date.now() + 5000;
    while (dirs.some((d) => pidsIn(d).length > 0) && Date.now() < deadline) {
      for (const d of dirs) for (const pid of pidsIn(d)) tryKill(pid);
      await sleep(20);
    }
    for (const d of dirs) {
      try {
        rmdirSync(d);
        report.cgroups++;
      } catch {
        /* still busy: the next start tries again */
      }
    }
  }
  const tmp = opts.tmpDir ?? os.tmpdir();
  let entries: string[] = [];
  try {
    entries = readdirSync(tmp);
  } catch {
    /* no temp dir */
  }
  for (const name of entries) {
    const m = RUN_DIR_RE.exec(name);
    if (!m || !dead(Number(m[1]))) continue;
    try {
      rmSync(path.join(tmp, name), { recursive: true, force: true });
      report.runDirs++;
    } catch {
      /* not ours to remove */
    }
  }
  return report;
}

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

// The reaper: blocks on its stdin (a pipe whose other end only this server holds),
// then, once the server is gone, kills and thaws its cgroups and removes its run dir.
// A graceful stop has already removed both, so it then finds nothing to do.
const REAPER = `
pid=$1; run=$2; shift 2
while read -r _; do :; done
for round in 1 2 3 4 5 6 7 8 9 10; do
  found=
  for base in "$@"; do
    for p in "$base"/lamina-"$pid"-*; do
      [ -d "$p" ] || continue
      found=1
      for d in $(find "$p" -depth -type d 2>/dev/null); do
        [ -f "$d/cgroup.kill" ] && echo 1 > "$d/cgroup.kill" 2>/dev/null
        for t in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$t" 2>/dev/null; done
        [ -f "$d/freezer.state" ] && echo THAWED > "$d/freezer.state" 2>/dev/null
        [ -f "$d/cgroup.freeze" ] && echo 0 > "$d/cgroup.freeze" 2>/dev/null
      done
      for d in $(find "$p" -depth -type d 2>/dev/null); do rmdir "$d" 2>/dev/null; done
    done
  done
  [ -z "$found" ] && break
  sleep 0.2
done
rm -rf "$run"
`;

/** Starts this server's reaper (see above); returns a function that retires it after a graceful stop. */
export function startReaper(runDir: string): () => void {
  if (!existsSync('/bin/sh')) return () => undefined;
  const child = spawn('/bin/sh', ['-c', REAPER, 'lamina-reaper', String(process.pid), runDir, ...cgroupBases()], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  child.on('error', () => undefined);
  child.unref();
  // The pipe must not keep the server's event loop alive.
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  child.stdin?.on('error', () => undefined);
  return () => child.stdin?.end();
}
