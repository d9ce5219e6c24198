// The sandbox's file system and namespaces, as bubblewrap arguments. The root
// is an empty, read-only tmpfs holding only the node binary and the shared
// libraries it links, the runtime file, the function's code, a few generated
// /etc files, its own /proc, a minimal /dev and a private size-capped /tmp.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import path from 'node:path';

/** Where things are inside every sandbox. */
export const SANDBOX_PATHS = {
  code: '/var/task',
  runtimeDir: '/var/runtime',
  /** Views of installed dependencies (read-only; sandbox/packages.ts); /var/task/node_modules links into it. */
  packages: '/var/packages',
  tmp: '/tmp',
  /** The uid and gid the runtime runs as inside (mapped to a per-sandbox host uid when Lamina is root). */
  uid: 65534,
} as const;

/** A bind mount: host path -> sandbox path. */
export type Bind = [src: string, dest: string];

/** The Python interpreter the python runtime uses (not the pyenv shim on PATH, which costs ~80 ms a start). */
export const PYTHON = '/usr/bin/python3';

/**
 * A binary and every shared object it loads, found the way ldd does
 * (the dynamic loader's trace mode), so no ldd binary is needed.
 */
export function nodeBinds(execPath = process.execPath): Bind[] {
  const binds: Bind[] = [[realpathSync(execPath), execPath]];
  const r = spawnSync(execPath, [], { env: { LD_TRACE_LOADED_OBJECTS: '1' }, encoding: 'utf8', timeout: 10_000 });
  for (const line of (r.stdout ?? '').split('\n')) {
    // "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "\t/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m && existsSync(m[1]!)) binds.push([realpathSync(m[1]!), m[1]!]);
  }
  return binds;
}

/** Shared objects named by the dynamic loader's trace output ("name => /path (0x...)" or "/path (0x...)"). */
function tracedLibraries(output: string): string[] {
  const out: string[] = [];
  for (const line of output.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m && existsSync(m[1]!)) out.push(m[1]!);
  }
  return out;
}

/**
 * The shared libraries every extension module of the standard library links
 * (libffi for ctypes, libssl for ssl, libsqlite3, libbz2, liblzma, readline's
 * and curses' libraries...), found by asking the dynamic loader to list each
 * module's dependencies (`ld.so --list`, which loads nothing of the module).
 * Asynchronous: dozens of modules are listed, at server start.
 */
export async function extensionLibraries(dirs: string[], loader: string): Promise<string[]> {
  const files: string[] = [];
  for (const dir of dirs) {
    try {
      for (const n of readdirSync(dir)) if (n.endsWith('.so')) files.push(path.join(dir, n));
    } catch {
      /* no such dir */
    }
  }
  if (files.length === 0) return [];
  // One shell runs the loader per module: one spawn from here instead of dozens.
  const stdout = await new Promise<string>((resolve) => {
    execFile('/bin/sh', ['-c', 'l="$1"; shift; for f; do "$l" --list "$f"; done', 'lamina-ldd', loader, ...files], { encoding: 'utf8', timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (_err, out) => resolve(out ?? ''));
  });
  return [...new Set(tracedLibraries(stdout))];
}

/** Read-only data some standard modules read at run time (zoneinfo's time zones), bound when present. */
const PYTHON_DATA = ['/usr/share/zoneinfo'];

/**
 * The Python interpreter, its libraries, its standard library and the data its
 * modules read, or undefined when there is no Python. The libraries of its
 * extension modules come from `pythonExtensionBinds`.
 */
export function pythonBinds(python = PYTHON): Bind[] | undefined {
  if (!existsSync(python)) return undefined;
  const r = spawnSync(python, ['-I', '-c', 'import sysconfig; p = sysconfig.get_paths(); print(p["stdlib"]); print(p["platstdlib"])'], { encoding: 'utf8', timeout: 10_000 });
  const [stdlib, platstdlib] = (r.stdout ?? '').split('\n').map((l) => l.trim());
  if (r.status !== 0 || !stdlib || !existsSync(stdlib)) return undefined;
  const binds: Bind[] = nodeBinds(python);
  const add = (dest: string) => {
    if (existsSync(dest) && !binds.some(([, d]) => d === dest)) binds.push([realpathSync(dest), dest]);
  };
  add(stdlib);
  if (platstdlib) add(platstdlib);
  for (const d of PYTHON_DATA) add(d);
  return binds;
}

/** The shared libraries of the extension modules (lib-dynload) under the stdlib dirs in `base` that `base` does not bind yet. */
export async function pythonExtensionBinds(base: Bind[]): Promise<Bind[]> {
  const dests = base.map(([, dest]) => dest);
  const loader = dests.find((d) => /\/ld-(linux|musl)[^/]*\.so/.test(d));
  if (!loader) return [];
  const dynload = dests.map((d) => path.join(d, 'lib-dynload')).filter((d) => existsSync(d));
  const libs = await extensionLibraries([...new Set(dynload)], loader);
  return libs.filter((l) => !dests.includes(l)).map((l): Bind => [realpathSync(l), l]);
}

export interface BwrapSpec {
  /** node + libraries. */
  rootBinds: Bind[];
  /** Generated files mounted read-only into /etc (passwd, group, hosts, nsswitch.conf). */
  etcFiles: Bind[];
  /** Host file of the runtime program and its name inside SANDBOX_PATHS.runtimeDir. */
  runtimeFile: string;
  runtimeName: string;
  /** Host directory bind-mounted read-only at /var/task; filled at load time. */
  codeDir: string;
  /** Host directory of package views, bind-mounted read-only at /var/packages. */
  packagesDir?: string;
  tmpBytes: number;
  network: boolean;
  /** File descriptor (in bwrap) holding the compiled seccomp program. */
  seccompFd: number;
}

/** Host files network functions need to resolve names and verify TLS peers. */
const NETWORK_FILES = ['/etc/resolv.conf', '/etc/hosts', '/etc/ssl/certs', '/usr/share/ca-certificates'];

export function bwrapArgs(s: BwrapSpec): string[] {
  const a: string[] = [
    // New user, pid, ipc, uts, net and cgroup namespaces; the user namespace lets an
    // unprivileged bwrap set all this up and maps the sandbox's uid to one host uid.
    '--unshare-all',
    '--unshare-user',
    '--disable-userns',
    ...(s.network ? ['--share-net'] : []),
    '--uid', String(SANDBOX_PATHS.uid),
    '--gid', String(SANDBOX_PATHS.uid),
    '--hostname', 'lamina',
    '--die-with-parent',
    '--new-session',
    '--cap-drop', 'ALL',
    '--clearenv',
    '--seccomp', String(s.seccompFd),
  ];
  for (const [src, dest] of s.rootBinds) a.push('--ro-bind', src, dest);
  // With network, the host's resolver files replace the generated /etc/hosts.
  for (const [src, dest] of s.etcFiles) if (!(s.network && NETWORK_FILES.includes(dest))) a.push('--ro-bind', src, dest);
  if (s.network) for (const f of NETWORK_FILES) a.push('--ro-bind-try', f, f);
  a.push('--ro-bind', s.runtimeFile, `${SANDBOX_PATHS.runtimeDir}/${s.runtimeName}`);
  a.push('--ro-bind', s.codeDir, SANDBOX_PATHS.code);
  if (s.packagesDir) a.push('--ro-bind', s.packagesDir, SANDBOX_PATHS.packages);
  a.push('--proc', '/proc');
  // A minimal /dev (null, zero, full, random, urandom, tty, pts), read-only so it is no unbounded scratch space.
  a.push('--dev', '/dev', '--remount-ro', '/dev');
  a.push('--size', String(s.tmpBytes), '--perms', '1777', '--tmpfs', SANDBOX_PATHS.tmp);
  a.push('--remount-ro', '/');
  a.push('--chdir', SANDBOX_PATHS.tmp);
  return a;
}

export interface NodeFlagsSpec {
  memoryMb: number;
  /** Node's permission model inside the container too (defence in depth). */
  permissions: boolean;
  runtimePath: string;
}

export function nodeArgs(s: NodeFlagsSpec): string[] {
  const perm = s.permissions
    ? [
        '--experimental-permission',
        `--allow-fs-read=${SANDBOX_PATHS.code}/`,
        `--allow-fs-read=${SANDBOX_PATHS.runtimeDir}/`,
        `--allow-fs-read=${SANDBOX_PATHS.packages}/`,
        `--allow-fs-read=${SANDBOX_PATHS.tmp}/`,
        `--allow-fs-write=${SANDBOX_PATHS.tmp}/`,
        '--disable-warning=ExperimentalWarning',
      ]
    : [];
  // The heap cap makes a JS heap blowup a clean V8 abort; the cgroup catches the rest.
  // bwrap always exports PWD after --chdir; the runtime replaces its whole environment at load.
  return [...perm, `--max-old-space-size=${s.memoryMb}`, s.runtimePath];
}

/** Generated /etc contents: an identity for the sandbox user (os.userInfo, os.homedir), localhost, and name lookup via files then DNS. */
export function etcContents(): Record<'passwd' | 'group' | 'hosts' | 'nsswitch.conf', string> {
  const id = SANDBOX_PATHS.uid;
  return {
    passwd: `sandbox:x:${id}:${id}:lamina sandbox:${SANDBOX_PATHS.tmp}:/sbin/nologin\n`,
    group: `sandbox:x:${id}:\n`,
    hosts: '127.0.0.1 localhost\n::1 localhost\n',
    'nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files dns\n',
  };
}
