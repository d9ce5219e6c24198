// The process tier's private mount namespace. Node's permission model does not
// cover connect() to a Unix-domain socket, and an empty network namespace does
// not either (path sockets live in the filesystem), so a sandbox could talk to
// any world-writable host socket: PostgreSQL's, D-Bus's, the journal's. As
// root, each sandbox therefore starts in its own mount namespace where the
// directories that hold such sockets (/run, /tmp, /var/tmp, /dev/shm) are empty
// tmpfs mounts; only Lamina's run dir is bound back in, so the sandbox still
// reaches its code, its runtime and its packages (each guarded by its mode).
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where host sockets usually live. /var/run is a link to /run on most systems (then hiding /run covers it). */
const SOCKET_DIRS = ['/run', '/var/run', '/tmp', '/var/tmp', '/dev/shm'];

/**
 * Arguments: $1 the working dir, $2 the fstab that says what to mount, $3 how many dirs to keep (at
 * most 3), those dirs, `--`, the command. Each kept dir is opened (fds 7 to 9: 3 carries the runtime
 * protocol) before anything is hidden; the fstab then binds that handle (/proc/self/fd/N), not the (by
 * then empty) path, back in place. One `mount -a` does every mount: a mount(8) per directory cost
 * about 40 ms of CPU per sandbox start, which bursts of cold starts felt.
 */
const SCRIPT = `work=$1; fstab=$2; n=$3; shift 3
i=0
while [ $i -lt $n ]; do
  eval "exec $((i + 7))<\\"\\$1\\"" || exit 121
  shift; i=$((i + 1))
done
[ "$1" = -- ] || exit 120
shift
mount -a -c -T "$fstab" || exit 122
i=0
while [ $i -lt $n ]; do
  eval "exec $((i + 7))<&-"
  i=$((i + 1))
done
cd "$work" || exit 124
exec "$@"`;

/** fstab's escaping of a path (space, tab, newline and backslash as octal). */
function fstabPath(p: string): string {
  return p.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** The fstab of one set of kept dirs, written once (root only) into the first kept dir, which stays visible. */
const fstabs = new Map<string, string>();
function fstabFor(keeps: string[]): string {
  const key = keeps.join('\0');
  let file = fstabs.get(key);
  if (file) return file;
  const lines = [
    ...hiddenDirs().map((d) => `lamina-hidden ${fstabPath(d)} tmpfs mode=755,size=64k,nosuid,nodev,noexec 0 0`),
    ...keeps.map((k, i) => `/proc/self/fd/${i + 7} ${fstabPath(k)} none bind,X-mount.mkdir 0 0`),
  ];
  file = path.join(keeps[0]!, `.lamina-hide-${process.pid}.fstab`);
  writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
  fstabs.set(key, file);
  return file;
}

/** The directories hidden on this host: existing real directories only (a symlink is covered by its target). */
export function hiddenDirs(): string[] {
  return SOCKET_DIRS.filter((d) => {
    try {
      return existsSync(d) && lstatSync(d).isDirectory();
    } catch {
      return false;
    }
  });
}

/**
 * The command that runs `command` in a new mount (and, with `net`, network) namespace
 * with the socket directories hidden and `keep` (and the Node binary's dir) visible, starting in `cwd`.
 */
export function hidingLauncher(keep: string, cwd: string, command: string[], net: boolean): { command: string; args: string[] } {
  // The Node binary may itself live under a hidden dir (e.g. a Node unpacked in /tmp): keep its dir too.
  const keeps = [keep, path.dirname(realpathSync(process.execPath))];
  return {
    command: 'unshare',
    args: [...(net ? ['--net'] : []), '--mount', '--propagation', 'private', '--', 'sh', '-c', SCRIPT, 'lamina-hide', cwd, fstabFor(keeps), String(keeps.length), ...keeps, '--', ...command],
  };
}

/** Whether mount namespaces work here (root, util-linux's unshare and mount), tried once at start. */
export function canHidePaths(): boolean {
  if (process.getuid?.() !== 0) return false;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-hide-probe-'));
  try {
    const probe = hidingLauncher(dir, dir, ['true'], false);
    return spawnSync(probe.command, probe.args, { stdio: 'ignore', timeout: 10_000 }).status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
