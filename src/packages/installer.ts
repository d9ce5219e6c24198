// Installs one planned dependency set with npm, in a sandbox, under limits.
//
// Sandbox ("bwrap" mode, the default where bubblewrap works): the container
// tier's building blocks: its own cgroup (memory, tasks, one CPU), a per-install
// unprivileged uid (as root), bubblewrap namespaces with an empty network
// namespace, a read-only view of the system's /usr (node, npm, sh and whatever
// install scripts call), generated /etc files, a private size-capped /tmp, the
// container seccomp filter, and one writable directory: the install dir, which
// holds only the normalized package.json, lockfile and file: tarballs. Nothing
// of the server (data dir, token, environment) is visible. The registry is
// reached through a proxy on a Unix socket that allows only the registry host
// (proxy.ts); nothing else is reachable.
// "plain" mode (no bubblewrap): a child process with an empty environment, its
// own uid and an empty network namespace when root, the cgroup when available,
// else an RSS watchdog over its process tree. Without root it has the server's
// uid and network: documented in docs/packages.md.
//
// Limits: wall time (LAMINA_INSTALL_TIMEOUT_MS), memory (LAMINA_INSTALL_MEMORY_MB)
// and installed size (LAMINA_PACKAGE_MAX_MB, polled while npm runs and checked
// at the end). Every failure is an InvalidFunction error naming the cause.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LaminaError } from '../errors.js';
import { nodeBinds, PYTHON } from '../sandbox/container/bwrap-args.js';
import { openCgroups, type CgroupManager, type SandboxCgroup } from '../sandbox/container/cgroups.js';
import { seccompProgram } from '../sandbox/container/seccomp.js';
import { sharedUids } from '../sandbox/uids.js';
import { DRIVER_SOURCE } from './driver.js';
import { currentNodeIdentity, type PackagePlan, type RuntimeIdentity } from './plan.js';
import { explainPipFailure, installedDistributions, pipArgs, SITE_PACKAGES } from './pip.js';
import type { PythonIdentity } from './pip-plan.js';
import { RegistryProxy, registryTarget, type ProxyTarget } from './proxy.js';
import { dirStats, removeAll } from './tree.js';

const MiB = 1024 * 1024;
const SECCOMP_FD = 3;
const POLL_MS = 500;
const OUTPUT_TAIL = 32 * 1024;
// Joins the cgroups, then becomes the next program (the container tier's launcher).
const LAUNCHER = 'set -f; IFS=:; for f in $LAMINA_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; unset LAMINA_CGROUP_PROCS IFS; exec "$@"';

export interface InstallLimits {
  timeoutMs: number;
  memoryMb: number;
  /** Most bytes node_modules may hold. */
  maxBytes: number;
}

export const DEFAULT_INSTALL_LIMITS: InstallLimits = { timeoutMs: 300_000, memoryMb: 1024, maxBytes: 250 * MiB };
export const DEFAULT_REGISTRY = 'https://registry.npmjs.org/';

/** Where pip installs from (LAMINA_PIP_*); the only hosts a Python install may reach. */
export interface PipOptions {
  /** PEP 503 index (pip's --index-url). */
  indexUrl: string;
  extraIndexUrls: string[];
  /** pip's --trusted-host: hosts (host or host:port) allowed over plain http or with any certificate; also reachable. */
  trustedHosts: string[];
  /** The interpreter pip runs with and functions run on. */
  python: string;
}

export const DEFAULT_PIP_INDEX = 'https://pypi.org/simple/';

export interface InstallerOptions {
  pip?: Partial<PipOptions>;
  limits?: Partial<InstallLimits>;
  /** npm registry URL; the only host the installer may reach. */
  registry?: string;
  /** npm's CLI script (default: found beside the node binary). */
  npmCli?: string;
  /** Force a confinement mode (default: bwrap where it works, else plain). */
  mode?: 'auto' | 'bwrap' | 'plain';
  log?: (msg: string) => void;
}

/** Limits and registry from LAMINA_* variables (docs/configuration.md). */
export function installerOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): InstallerOptions {
  const num = (key: string, fallback: number, min: number): number => {
    const raw = env[key];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) throw new Error(`${key} must be a number of at least ${min} (got "${raw}")`);
    return n;
  };
  const mode = env.LAMINA_INSTALL_SANDBOX || 'auto';
  if (!['auto', 'bwrap', 'plain'].includes(mode)) throw new Error(`LAMINA_INSTALL_SANDBOX must be auto, bwrap or plain (got "${mode}")`);
  const registry = env.LAMINA_NPM_REGISTRY || DEFAULT_REGISTRY;
  if (!/^https?:\/\/[^/]+/.test(registry) || !URL.canParse(registry)) throw new Error(`LAMINA_NPM_REGISTRY must be an http(s) URL (got "${registry}")`);
  const pipIndex = env.LAMINA_PIP_INDEX_URL || DEFAULT_PIP_INDEX;
  const extra = (env.LAMINA_PIP_EXTRA_INDEX_URL ?? '').split(/[\s,]+/).filter(Boolean);
  for (const [key, u] of [['LAMINA_PIP_INDEX_URL', pipIndex] as const, ...extra.map((u) => ['LAMINA_PIP_EXTRA_INDEX_URL', u] as const)]) {
    if (!/^https?:\/\/[^/]+/.test(u) || !URL.canParse(u)) throw new Error(`${key} must be http(s) URLs (got "${u}")`);
  }
  const trusted = (env.LAMINA_PIP_TRUSTED_HOSTS ?? '').split(/[\s,]+/).filter(Boolean);
  for (const h of trusted) if (!/^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9a-fA-F:]+\](?::\d{1,5})?$/.test(h)) throw new Error(`LAMINA_PIP_TRUSTED_HOSTS must list host or host:port names (got "${h}")`);
  return {
    pip: { indexUrl: pipIndex, extraIndexUrls: extra, trustedHosts: trusted },
    limits: {
      timeoutMs: num('LAMINA_INSTALL_TIMEOUT_MS', DEFAULT_INSTALL_LIMITS.timeoutMs, 1000),
      memoryMb: num('LAMINA_INSTALL_MEMORY_MB', DEFAULT_INSTALL_LIMITS.memoryMb, 64),
      maxBytes: num('LAMINA_PACKAGE_MAX_MB', DEFAULT_INSTALL_LIMITS.maxBytes / MiB, 1) * MiB,
    },
    registry,
    mode: mode as InstallerOptions['mode'],
  };
}

export interface InstallProgress {
  phase: 'preparing' | 'installing' | 'verifying';
  /** Bytes in the install dir so far. */
  bytes: number;
  /** The last line npm printed. */
  lastLine: string;
}

export interface InstalledTree {
  /** The install dir: node_modules and package-lock.json inside. */
  dir: string;
  sizeBytes: number;
  files: number;
  /** Installed packages (from npm's hidden lockfile). */
  packages: { name: string; version: string }[];
  /** The lockfile the install used or produced (npm; empty for pip). */
  lockfile: string;
  /** The installed tree's dir name inside `dir`: node_modules (npm) or site-packages (pip). */
  content: string;
  /** pip: the importable top-level modules of the installed distributions (what a pre-started runtime imports). */
  modules?: string[];
  durationMs: number;
  /** Packages whose install scripts npm skipped (not approved in package.json "allowScripts"). */
  skippedScripts: string[];
  /** Removes the install dir. */
  cleanup(): Promise<void>;
}

type Mode = 'bwrap' | 'plain';

interface Launch {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  extraFds: number[];
  detached: boolean;
}

function which(cmd: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/bin', '/usr/sbin', '/sbin'])) {
    const p = path.join(d, cmd);
    if (d && existsSync(p)) return p;
  }
  return undefined;
}

/** npm's CLI script beside this node (system installs, nvm, the official tarballs). */
function findNpmCli(): string {
  const candidates = [path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')];
  const npm = which('npm');
  if (npm) {
    try {
      candidates.push(realpathSync(npm));
    } catch {
      /* dangling */
    }
  }
  for (const c of candidates) if (c.endsWith('npm-cli.js') && existsSync(c)) return realpathSync(c);
  throw new Error('npm is not installed beside node (looked for lib/node_modules/npm/bin/npm-cli.js); set LAMINA_NPM_CLI');
}

/** bwrap arguments that show the host's system dirs read-only (a merged /usr keeps its /bin -> usr/bin links). */
function systemBinds(): string[] {
  const a = ['--ro-bind', '/usr', '/usr'];
  for (const d of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    let st;
    try {
      st = lstatSync(d);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) a.push('--symlink', readlinkSync(d), d);
    else if (st.isDirectory()) a.push('--ro-bind', d, d);
  }
  return a;
}

const covered = (p: string, prefixes: string[]): boolean => prefixes.some((pre) => p === pre || p.startsWith(`${pre}/`));

export class Installer {
  readonly limits: InstallLimits;
  readonly registry: string;
  readonly pip: PipOptions;
  private readonly npmCli: string | undefined;
  private pythonIdP: Promise<PythonIdentity> | undefined;
  private modeP: Promise<{ mode: Mode; reason: string }> | undefined;
  private identityP: Promise<RuntimeIdentity> | undefined;
  private seq = 0;
  private readonly log: (msg: string) => void;

  constructor(private readonly opts: InstallerOptions = {}) {
    this.limits = { ...DEFAULT_INSTALL_LIMITS, ...opts.limits };
    this.registry = (opts.registry ?? DEFAULT_REGISTRY).replace(/\/*$/, '/');
    registryTarget(this.registry); // throws on a malformed URL
    this.pip = { indexUrl: DEFAULT_PIP_INDEX, extraIndexUrls: [], trustedHosts: [], python: PYTHON, ...opts.pip };
    this.pip.indexUrl = this.pip.indexUrl.replace(/\/*$/, '/');
    this.npmCli = opts.npmCli ?? process.env.LAMINA_NPM_CLI;
    this.log = opts.log ?? (() => undefined);
  }

  private cli(): string {
    return this.npmCli ?? findNpmCli();
  }

  /** npm's version and the Node runtime identity (part of the cache key). */
  identity(): Promise<RuntimeIdentity> {
    return (this.identityP ??= (async () => {
      const npmVersion = await new Promise<string>((resolve) => {
        try {
          execFile(process.execPath, [this.cli(), '--version'], { encoding: 'utf8', timeout: 30_000, env: { PATH: '/usr/bin:/bin', HOME: os.tmpdir(), npm_config_update_notifier: 'false' } }, (err, stdout) => resolve(err ? 'unknown' : stdout.trim() || 'unknown'));
        } catch {
          resolve('unknown'); // no npm: reported when an install is attempted
        }
      });
      return { npmVersion, node: currentNodeIdentity() };
    })());
  }

  /** The interpreter and pip that Python installs use (part of their cache key). */
  pythonIdentity(): Promise<PythonIdentity> {
    return (this.pythonIdP ??= new Promise((resolve, reject) => {
      const code = 'import sys, sysconfig, platform\ntry:\n    import pip; v = pip.__version__\nexcept Exception:\n    v = "none"\nprint(sys.implementation.cache_tag, sysconfig.get_platform(), platform.python_version(), v)';
      execFile(this.pip.python, ['-I', '-c', code], { encoding: 'utf8', timeout: 30_000, env: {} }, (err, stdout) => {
        const [tag, plat, version, pip] = (stdout ?? '').trim().split(/\s+/);
        if (err || !tag || !plat || !version || !pip) {
          this.pythonIdP = undefined;
          reject(new LaminaError('InvalidFunction', `requirements.txt cannot be installed: ${this.pip.python} does not run${err ? ` (${err.message})` : ''}`));
        } else if (pip === 'none') {
          this.pythonIdP = undefined;
          reject(new LaminaError('InvalidFunction', `requirements.txt cannot be installed: pip is not installed for ${this.pip.python} (apt-get install python3-pip)`));
        } else resolve({ interpreter: `${tag}-${plat}`, version, pip });
      });
    }));
  }

  /** The index settings as one string (part of the cache key of Python installs). */
  pipIndexKey(): string {
    return JSON.stringify([this.pip.indexUrl, this.pip.extraIndexUrls, [...this.pip.trustedHosts].sort()]);
  }

  /** Hosts a pip install may reach: the indexes, PyPI's file host when PyPI is used, trusted hosts. */
  private pipTargets(): ProxyTarget[] {
    const out: ProxyTarget[] = [];
    const add = (t: ProxyTarget) => {
      if (!out.some((o) => o.host === t.host && o.port === t.port)) out.push(t);
    };
    for (const u of [this.pip.indexUrl, ...this.pip.extraIndexUrls]) {
      add(registryTarget(u));
      // PyPI serves its index from pypi.org and its files from files.pythonhosted.org.
      if (registryTarget(u).host === 'pypi.org') add({ host: 'files.pythonhosted.org', port: 443 });
    }
    for (const h of this.pip.trustedHosts) {
      const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(h);
      if (!m) continue;
      const host = m[1]!.toLowerCase();
      if (m[2]) add({ host, port: Number(m[2]) });
      else for (const port of [80, 443]) add({ host, port });
    }
    return out;
  }

  /** Which confinement installs get here, and why (tried once). */
  mode(): Promise<{ mode: Mode; reason: string }> {
    return (this.modeP ??= this.detectMode());
  }

  async describe(): Promise<Record<string, unknown>> {
    const m = await this.mode();
    const id = await this.identity();
    const py = await this.pythonIdentity().catch((err: Error) => ({ error: err.message }));
    return { mode: m.mode, confinement: m.reason, registry: this.registry, npm: id.npmVersion, runtime: id.node, pip: { indexUrl: this.pip.indexUrl, extraIndexUrls: this.pip.extraIndexUrls, trustedHosts: this.pip.trustedHosts, python: py }, limits: { timeoutMs: this.limits.timeoutMs, memoryMb: this.limits.memoryMb, maxMb: Math.round(this.limits.maxBytes / MiB) } };
  }

  private async detectMode(): Promise<{ mode: Mode; reason: string }> {
    const wanted = this.opts.mode ?? 'auto';
    if (wanted === 'plain') return { mode: 'plain', reason: this.plainReason() };
    const bwrap = which('bwrap');
    let why = 'bubblewrap is not installed';
    if (bwrap) {
      const trial = await this.trial();
      if (!trial) return { mode: 'bwrap', reason: `bubblewrap: empty network namespace (registry-only proxy), read-only system, seccomp, ${process.getuid?.() === 0 ? 'per-install uid' : "the server's uid"}${(await this.cgroupsUsable()) ? ', cgroup memory/task/CPU limits' : ', RSS watchdog'}` };
      why = `a trial bubblewrap sandbox failed: ${trial}`;
    }
    if (wanted === 'bwrap') throw new Error(`the install sandbox is unavailable: ${why}`);
    this.log(`package installer: ${why}; installs run as plain child processes`);
    return { mode: 'plain', reason: `${this.plainReason()} (${why})` };
  }

  private plainReason(): string {
    if (process.getuid?.() !== 0) return "child process with the server's uid and network, clean environment (not root)";
    return which('ip') && which('unshare') && which('setpriv') ? 'child process: per-install uid, empty network namespace (registry-only proxy), clean environment' : "child process with the server's network (needs unshare, setpriv and ip for a per-install uid and network namespace), clean environment";
  }

  private cgroupsUsableP: Promise<boolean> | undefined;
  private cgroupsUsable(): Promise<boolean> {
    return (this.cgroupsUsableP ??= openCgroups()
      .then(async (m) => {
        await m.close();
        return true;
      })
      .catch(() => false));
  }

  /** Runs `node -e 0` the way an install runs; '' on success, else why not. */
  private async trial(): Promise<string> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'lamina-install-'));
    let uid: number | undefined;
    try {
      await fs.chmod(root, 0o711);
      const work = path.join(root, 'work');
      await fs.mkdir(work, { mode: 0o700 });
      uid = await sharedUids().acquire();
      if (process.getuid?.() === 0) await fs.chown(work, uid, uid);
      const launch = await this.bwrapLaunch(root, work, uid, undefined, [process.execPath, '-e', '0']);
      const child = spawn(launch.command, launch.args, { env: launch.env, stdio: ['ignore', 'ignore', 'pipe', ...launch.extraFds] });
      for (const fd of launch.extraFds) closeSync(fd);
      let err = '';
      child.stderr!.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-2000)));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.on('error', (e) => ((err += e.message), clearTimeout(timer), resolve(-1)));
        child.on('exit', (c) => (clearTimeout(timer), resolve(c)));
      });
      return code === 0 ? '' : `exit ${code}: ${err.trim().split('\n').slice(-2).join(' | ') || 'no output'}`;
    } catch (err) {
      return (err as Error).message;
    } finally {
      await removeAll(root);
      if (uid !== undefined) sharedUids().release(uid);
    }
  }

  private async bwrapLaunch(root: string, work: string, uid: number, socketDir: string | undefined, command: string[], cg?: SandboxCgroup): Promise<Launch> {
    const etc = path.join(root, 'etc');
    await fs.mkdir(etc, { recursive: true, mode: 0o755 });
    const files: Record<string, string> = {
      passwd: 'install:x:65534:65534:lamina installer:/work/.home:/bin/sh\n',
      group: 'install:x:65534:\n',
      hosts: '127.0.0.1 localhost\n::1 localhost\n',
      'nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files\n',
    };
    for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(etc, name), text, { mode: 0o444 });
    const seccomp = path.join(root, 'seccomp.bpf');
    await fs.writeFile(seccomp, seccompProgram(), { mode: 0o444 });
    const driver = path.join(root, 'driver.mjs');
    await fs.writeFile(driver, DRIVER_SOURCE, { mode: 0o444 });

    const sys = systemBinds();
    const boundPrefixes = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
    const a: string[] = [
      '--unshare-all', '--unshare-user', '--disable-userns',
      '--uid', '65534', '--gid', '65534',
      '--hostname', 'lamina-install',
      '--die-with-parent', '--new-session', '--cap-drop', 'ALL', '--clearenv',
      '--seccomp', String(SECCOMP_FD),
      ...sys,
    ];
    // node and its libraries when they live outside the system dirs (e.g. /opt, nvm).
    for (const [src, dest] of nodeBinds()) if (!covered(dest, boundPrefixes)) a.push('--ro-bind', src, dest);
    const npmCli = this.cli();
    const npmRoot = path.resolve(path.dirname(npmCli), '..');
    if (!covered(npmRoot, boundPrefixes)) a.push('--ro-bind', npmRoot, npmRoot);
    for (const name of Object.keys(files)) a.push('--ro-bind', path.join(etc, name), `/etc/${name}`);
    for (const p of ['/etc/ssl', '/etc/ca-certificates', '/etc/pki']) a.push('--ro-bind-try', p, p);
    const extraCa = process.env.NODE_EXTRA_CA_CERTS;
    if (extraCa && existsSync(extraCa)) a.push('--ro-bind-try', extraCa, extraCa, '--setenv', 'NODE_EXTRA_CA_CERTS', extraCa);
    a.push('--proc', '/proc', '--dev', '/dev', '--remount-ro', '/dev');
    a.push('--size', String(256 * MiB), '--perms', '1777', '--tmpfs', '/tmp');
    a.push('--bind', work, '/work');
    a.push('--ro-bind', driver, '/lamina/driver.mjs');
    if (socketDir) a.push('--ro-bind', socketDir, '/lamina/proxy');
    a.push('--remount-ro', '/');
    a.push('--chdir', '/work');
    for (const [k, v] of Object.entries(this.childEnv('/work'))) a.push('--setenv', k, v);

    const bwrap = which('bwrap');
    if (!bwrap) throw new Error('bubblewrap is not installed');
    const asRoot = process.getuid?.() === 0;
    const setpriv = asRoot ? which('setpriv') : undefined;
    const priv = setpriv ? [setpriv, `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'] : [];
    const full = [...priv, bwrap, ...a, ...command];
    const fd = openSync(seccomp, 'r');
    if (cg) return { command: '/bin/sh', args: ['-c', LAUNCHER, 'lamina-install', ...full], env: { LAMINA_CGROUP_PROCS: cg.procsFiles.join(':') }, extraFds: [fd], detached: false };
    return { command: full[0]!, args: full.slice(1), env: {}, extraFds: [fd], detached: false };
  }

  private childEnv(work: string): Record<string, string> {
    return {
      HOME: `${work}/.home`,
      PATH: '/usr/local/bin:/usr/bin:/bin',
      TMPDIR: '/tmp',
      LANG: 'C.UTF-8',
      npm_config_cache: `${work}/.home/.npm`,
      npm_config_userconfig: `${work}/.home/.npmrc`,
      npm_config_globalconfig: `${work}/.home/.npmrc-global`,
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
      npm_config_progress: 'false',
      npm_config_color: 'false',
      // pip: no config files, no cache, no prompts, no version check.
      PIP_CONFIG_FILE: '/dev/null',
      PIP_NO_CACHE_DIR: '1',
      PIP_NO_INPUT: '1',
      PIP_DISABLE_PIP_VERSION_CHECK: '1',
      PYTHONNOUSERSITE: '1',
    };
  }

  private plainLaunch(root: string, work: string, uid: number, socketPath: string | undefined, program: string, args: string[], cg?: SandboxCgroup): Launch {
    const driver = path.join(root, 'driver.mjs');
    const env = { ...this.childEnv(work), TMPDIR: path.join(work, '.tmp') };
    const cmd = [process.execPath, driver, socketPath ?? '-', program, ...args];
    const asRoot = process.getuid?.() === 0;
    let full = cmd;
    const ip = which('ip');
    if (asRoot && which('setpriv') && which('unshare') && ip) {
      // A new network namespace starts with loopback down: bring it up (still root inside) so the
      // driver's loopback proxy works, then drop to the install's uid.
      const priv = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--pdeathsig=KILL', '--', ...cmd];
      full = ['unshare', '--net', '--', '/bin/sh', '-c', `"${ip}" link set lo up || exit 125; exec "$@"`, 'lamina-install', ...priv];
    }
    if (cg) return { command: '/bin/sh', args: ['-c', LAUNCHER, 'lamina-install', ...full], env: { ...env, LAMINA_CGROUP_PROCS: cg.procsFiles.join(':') }, cwd: work, extraFds: [], detached: true };
    return { command: full[0]!, args: full.slice(1), env, cwd: work, extraFds: [], detached: true };
  }

  /**
   * Installs `plan` into a fresh temporary dir and verifies the result. Throws
   * InvalidFunction (a 400 for the deploy) with the reason when npm fails or a
   * limit is hit; nothing is left behind then.
   */
  async install(plan: PackagePlan, onProgress: (p: InstallProgress) => void = () => undefined): Promise<InstalledTree> {
    const started = performance.now();
    const { mode } = await this.mode();
    const asRoot = process.getuid?.() === 0;
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'lamina-install-'));
    let proxy: RegistryProxy | undefined;
    let manager: CgroupManager | undefined;
    let cg: SandboxCgroup | undefined;
    let uid: number | undefined;
    let done = false;
    const cleanup = () => removeAll(root);
    try {
      await fs.chmod(root, 0o711);
      const work = path.join(root, 'work');
      await fs.mkdir(work, { mode: 0o700 });
      await fs.mkdir(path.join(work, '.home'), { mode: 0o700 });
      await fs.mkdir(path.join(work, '.tmp'), { mode: 0o700 });
      const pip = plan.ecosystem === 'pip';
      if (pip) await fs.writeFile(path.join(work, 'requirements.txt'), plan.requirements ?? '');
      else {
        await fs.writeFile(path.join(work, 'package.json'), JSON.stringify(plan.packageJson, null, 2) + '\n');
        if (plan.lockfile) await fs.writeFile(path.join(work, 'package-lock.json'), JSON.stringify(plan.lockfile, null, 2) + '\n');
        for (const f of plan.files) {
          const dest = path.join(work, ...f.rel.split('/'));
          await fs.mkdir(path.dirname(dest), { recursive: true });
          await fs.copyFile(f.abs, dest);
        }
      }
      await fs.writeFile(path.join(root, 'driver.mjs'), DRIVER_SOURCE, { mode: 0o444 });
      // A host-wide unique uid (sandbox/uids.ts); the result is given back to root before the uid is released.
      uid = await sharedUids().acquire();
      if (asRoot) await chownTree(work, uid);
      onProgress({ phase: 'preparing', bytes: 0, lastLine: '' });

      const socketDir = path.join(root, 'proxy');
      await fs.mkdir(socketDir, { mode: 0o711 });
      proxy = await RegistryProxy.start(path.join(socketDir, 'registry.sock'), pip ? this.pipTargets() : this.registry);

      if (await this.cgroupsUsable()) {
        try {
          manager = await openCgroups();
          cg = await manager.create(`install-${process.pid}-${this.seq}`, { memoryBytes: this.limits.memoryMb * MiB, pidsMax: 512, cpuShares: 1024, cpuQuotaCores: 1 });
        } catch (err) {
          this.log(`package installer: no cgroup for this install (${(err as Error).message}); using an RSS watchdog`);
          cg = undefined;
        }
      }
      const npmArgs = [
        plan.lockfile ? 'ci' : 'install',
        '--omit=dev',
        '--ignore-scripts=false',
        '--no-audit',
        '--no-fund',
        '--no-update-notifier',
        `--registry=${this.registry}`,
        '--fetch-retries=1',
        ...(plan.lockfile ? [] : ['--package-lock=true']),
      ];
      // pip runs as `python3 -I -m pip install --target <work>/site-packages -r requirements.txt` (pip.ts).
      const program = pip ? this.pip.python : this.cli();
      const args = pip ? pipArgs(this.pip, mode === 'bwrap' ? '/work' : work) : npmArgs;
      const launch =
        mode === 'bwrap'
          ? await this.bwrapLaunch(root, work, uid, socketDir, [process.execPath, '/lamina/driver.mjs', '/lamina/proxy/registry.sock', program, ...args], cg)
          : this.plainLaunch(root, work, uid, path.join(socketDir, 'registry.sock'), program, args, cg);

      const run = await this.run(launch, work, cg, onProgress);
      if (run.failure) throw new LaminaError('InvalidFunction', run.failure);
      if (run.code !== 0) {
        throw new LaminaError('InvalidFunction', pip ? explainPipFailure(run.output, run.code, this.pip.indexUrl, proxy.refused) : explainNpmFailure(run.output, run.code, this.registry, proxy.refused));
      }

      onProgress({ phase: 'verifying', bytes: run.bytes, lastLine: '' });
      const content = pip ? SITE_PACKAGES : 'node_modules';
      const nodeModules = path.join(work, content);
      if (!existsSync(nodeModules)) {
        if (!pip) throw new LaminaError('InvalidFunction', `installing dependencies produced no node_modules; npm said: ${tail(run.output)}`);
        await fs.mkdir(nodeModules); // requirements that only list packages already satisfied... pip made nothing
      }
      // Leftovers of the install, not part of the result.
      await removeAll(path.join(work, '.home'));
      await removeAll(path.join(work, '.tmp'));
      // The uid goes back to the pool and may run a sandbox next: it must own nothing that is kept.
      if (asRoot) await chownTree(work, 0);
      const stats = await dirStats(nodeModules, { refuseOutsideLinks: true });
      if (stats.problem) throw new LaminaError('InvalidFunction', `the installed dependencies hold ${stats.problem}; refused`);
      if (stats.bytes > this.limits.maxBytes) throw new LaminaError('InvalidFunction', tooBig(stats.bytes, this.limits.maxBytes, nodeModules));
      const lockfile = pip ? '' : await fs.readFile(path.join(work, 'package-lock.json'), 'utf8').catch(() => '');
      // Preloading imports the modules of the requirements themselves (their dependencies come along).
      const installed = pip ? installedDistributions(nodeModules) : undefined;
      const dists = installed && { packages: installed.packages, modules: [...new Set(installed.dists.filter((d) => plan.dependencies.includes(d.name)).flatMap((d) => d.modules))].sort() };
      done = true;
      return {
        dir: work,
        content,
        ...(dists ? { modules: dists.modules } : {}),
        sizeBytes: stats.bytes,
        files: stats.files,
        packages: dists ? dists.packages : installedPackages(nodeModules),
        lockfile,
        durationMs: performance.now() - started,
        skippedScripts: pip ? [] : skippedScripts(run.output),
        cleanup,
      };
    } finally {
      await proxy?.close().catch(() => undefined);
      if (cg) await cg.remove().catch((err: Error) => this.log(`package installer: ${err.message}`));
      if (manager) await manager.close().catch(() => undefined);
      if (!done) await cleanup();
      if (uid !== undefined) sharedUids().release(uid);
    }
  }

  /** Runs npm under the limits; resolves with its exit code and output, or a failure message when a limit killed it. */
  private run(launch: Launch, work: string, cg: SandboxCgroup | undefined, onProgress: (p: InstallProgress) => void): Promise<{ code: number | null; output: string; failure?: string; bytes: number }> {
    return new Promise((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(launch.command, launch.args, { env: launch.env, cwd: launch.cwd, detached: launch.detached, stdio: ['ignore', 'pipe', 'pipe', ...launch.extraFds] });
      } finally {
        for (const fd of launch.extraFds) closeSync(fd);
      }
      let output = '';
      let lastLine = '';
      let bytes = 0;
      let failure: string | undefined;
      const onData = (b: Buffer) => {
        const s = b.toString('utf8');
        output = (output + s).slice(-OUTPUT_TAIL);
        const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
        const useful = lines.filter((l) => !/A complete log of this run|^npm (error|warn|notice)\s*$/.test(l));
        if (useful.length) lastLine = useful[useful.length - 1]!.slice(0, 200);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      const kill = (why: (script: string | undefined) => string) => {
        failure ??= why(child.pid ? activeScript(child.pid) : undefined);
        try {
          cg?.killAll();
          if (launch.detached && child.pid) process.kill(-child.pid, 'SIGKILL');
          else child.kill('SIGKILL');
        } catch {
          /* gone */
        }
      };
      const timer = setTimeout(() => kill((script) => `installing dependencies took longer than ${Math.round(this.limits.timeoutMs / 1000)} s (LAMINA_INSTALL_TIMEOUT_MS) and was stopped; ${where(script, lastLine)}`), this.limits.timeoutMs);
      // The whole install dir counts (node_modules and npm's cache), with room for the cache.
      const diskCap = this.limits.maxBytes * 2 + 64 * MiB;
      let polling = false;
      const poll = setInterval(async () => {
        if (polling || failure) return;
        polling = true;
        try {
          const s = await dirStats(work, {});
          bytes = s.bytes;
          onProgress({ phase: 'installing', bytes, lastLine });
          const nm = path.join(work, 'node_modules');
          const nmBytes = existsSync(nm) ? (await dirStats(nm, {})).bytes : 0;
          if (nmBytes > this.limits.maxBytes) kill(() => tooBig(nmBytes, this.limits.maxBytes, nm));
          else if (s.bytes > diskCap) kill(() => `installing dependencies wrote more than ${Math.round(diskCap / MiB)} MB, npm's download cache included (LAMINA_PACKAGE_MAX_MB is ${Math.round(this.limits.maxBytes / MiB)})`);
          if (!cg && child.pid) {
            const rss = treeRss(child.pid);
            if (rss > this.limits.memoryMb * MiB) kill((script) => memoryMessage(this.limits.memoryMb, lastLine, script));
          }
        } catch {
          /* the tree changes under us; next poll */
        } finally {
          polling = false;
        }
      }, POLL_MS);
      const finish = async (code: number | null) => {
        clearTimeout(timer);
        clearInterval(poll);
        if (!failure && cg && (await cg.oomKills().catch(() => 0)) > 0) failure = memoryMessage(this.limits.memoryMb, lastLine, scriptInOutput(output));
        // Anything the install started is gone before the dir is judged.
        try {
          cg?.killAll();
          if (launch.detached && child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
        resolve({ code, output, failure, bytes });
      };
      child.on('error', (err) => {
        failure ??= `cannot start the installer: ${err.message}`;
        void finish(null);
      });
      child.on('exit', (code, signal) => void finish(code ?? (signal ? 128 : null)));
    });
  }
}

function where(script: string | undefined, lastLine: string): string {
  return script ? `it was running the install script of "${script}"` : `npm was at: ${lastLine || 'no output yet'}`;
}

function memoryMessage(mb: number, lastLine: string, script?: string): string {
  return `installing dependencies used more than ${mb} MB of memory (LAMINA_INSTALL_MEMORY_MB) and was stopped; ${where(script, lastLine)}`;
}

/** The package npm names as the one whose script failed (npm prints its path when a script dies). */
function scriptInOutput(output: string): string | undefined {
  return /npm error path \S*node_modules\/((?:@[^/\s]+\/)?[^/\s]+)\s*$/m.exec(output)?.[1];
}

function tooBig(bytes: number, max: number, nodeModules: string): string {
  const biggest = biggestPackage(nodeModules);
  return `the dependencies take more than ${Math.round(max / MiB)} MB installed (LAMINA_PACKAGE_MAX_MB; ${(bytes / MiB).toFixed(1)} MB when stopped)${biggest ? `; the largest is "${biggest.name}" (${(biggest.bytes / MiB).toFixed(1)} MB)` : ''}`;
}

/** The top-level package taking the most bytes (a rough walk; messages only). */
function biggestPackage(nodeModules: string): { name: string; bytes: number } | undefined {
  let best: { name: string; bytes: number } | undefined;
  const sizeOf = (p: string): number => {
    let n = 0;
    let entries;
    try {
      entries = readdirSync(p, { withFileTypes: true });
    } catch {
      return 0;
    }
    for (const e of entries) {
      const c = path.join(p, e.name);
      try {
        if (e.isDirectory()) n += sizeOf(c);
        else if (e.isFile()) n += lstatSync(c).size;
      } catch {
        /* vanished */
      }
    }
    return n;
  };
  let names: string[] = [];
  try {
    names = readdirSync(nodeModules).filter((n) => !n.startsWith('.'));
  } catch {
    return undefined;
  }
  for (const n of names) {
    const dirs = n.startsWith('@') ? safeList(path.join(nodeModules, n)).map((s) => `${n}/${s}`) : [n];
    for (const name of dirs) {
      const bytes = sizeOf(path.join(nodeModules, name));
      if (!best || bytes > best.bytes) best = { name, bytes };
    }
  }
  return best;
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** A process and all its descendants. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of safeList('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch {
      /* exited */
    }
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** RSS of a process and all its descendants, in bytes. */
function treeRss(pid: number): number {
  let total = 0;
  for (const p of descendants(pid)) {
    try {
      total += Number(readFileSync(`/proc/${p}/statm`, 'utf8').split(' ')[1]) * 4096;
    } catch {
      /* exited */
    }
  }
  return total;
}

/** The package whose install script is running under `pid` (a process whose working dir is inside node_modules), if any. */
function activeScript(pid: number): string | undefined {
  for (const p of descendants(pid).reverse()) {
    try {
      const cwd = readlinkSync(`/proc/${p}/cwd`);
      const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)(?:\/|$)(?!.*\/node_modules\/)/.exec(cwd);
      if (m) return m[1];
    } catch {
      /* exited */
    }
  }
  return undefined;
}

async function chownTree(dir: string, uid: number): Promise<void> {
  await fs.chown(dir, uid, uid);
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, uid);
    else await fs.lchown(p, uid, uid);
  }
}

/** name@version of everything installed, from npm's hidden lockfile. */
function installedPackages(nodeModules: string): { name: string; version: string }[] {
  try {
    const lock = JSON.parse(readFileSync(path.join(nodeModules, '.package-lock.json'), 'utf8')) as { packages?: Record<string, { version?: string; name?: string }> };
    return Object.entries(lock.packages ?? {})
      .filter(([k]) => k.startsWith('node_modules/'))
      .map(([k, v]) => ({ name: v.name ?? k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length), version: v.version ?? '?' }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch {
    return [];
  }
}

function skippedScripts(output: string): string[] {
  // npm 11 lists them after "install scripts were not run" / "have install scripts" notices.
  const m = /(?:scripts? (?:were|was) (?:not run|skipped)|not yet covered by allowScripts)[^\n]*\n((?:npm (?:warn|notice)\s+\S[^\n]*\n)+)/i.exec(output);
  if (!m) return [];
  return [...m[1]!.matchAll(/npm (?:warn|notice)\s+(\S+)/g)].map((x) => x[1]!).filter((n) => /^[@a-z0-9]/i.test(n)).slice(0, 50);
}

/** The last npm error lines (or the last lines), for messages. */
function tail(output: string, max = 1200): string {
  const lines = output.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  const errors = lines.filter((l) => /^npm (error|ERR!)/.test(l) && !/A complete log of this run|^npm error( 404)?\s*$|npm error 404 (Note that you can also|tarball, folder, http url)/.test(l));
  const pick = (errors.length ? errors : lines).slice(-10).join(' | ');
  return pick.length > max ? `...${pick.slice(-max)}` : pick || 'no output';
}

/** One clear sentence for a failed npm run, followed by npm's own last error lines. */
export function explainNpmFailure(output: string, code: number | null, registry: string, refused: Set<string>): string {
  let why: string;
  let m: RegExpExecArray | null;
  if ((m = /'((?:@[^/\s']+\/)?[^@\s']+)@[^']*' is not in (?:this|the npm) registry/.exec(output)) || (m = /404 Not Found - GET \S+\/((?:@[^/\s]+(?:\/|%2f))?[^/\s]+)\s*(?:-|$)/im.exec(output))) {
    why = `dependency "${decodeURIComponent(m[1]!)}" does not exist in the registry (${registry})`;
  } else if ((m = /No matching version found for (\S+)/.exec(output))) {
    why = `no published version matches ${m[1]!.replace(/\.$/, '')}`;
  } else if (/npm error code EINTEGRITY/.test(output)) {
    m = /(?:for|of) (\S+?)(?:\s|$)/.exec(output.slice(output.indexOf('EINTEGRITY')));
    why = `a downloaded package does not match its lockfile integrity hash${m ? ` (${m[1]})` : ''}`;
  } else if (/can only install packages when your package\.json and package-lock\.json/.test(output)) {
    why = 'package.json and package-lock.json are not in sync (run npm install and deploy the updated lockfile)';
  } else if ((m = /npm error path \S*node_modules\/((?:@[^/\s]+\/)?[^/\s]+)\s*\n(?:[^\n]*\n)*?npm error command failed/.exec(output))) {
    const cmd = /npm error command (?!failed)(.+)/.exec(output)?.[1]?.trim();
    why = `the install script of "${m[1]}" failed${cmd ? ` (${cmd})` : ''}${code !== null ? `, exit ${code}` : ''}`;
  } else if (refused.size > 0) {
    why = `the install tried to reach ${[...refused].slice(0, 3).join(', ')}, but the installer may reach only the registry (${registry})`;
  } else if (/ENOTFOUND|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|ENETUNREACH|tunneling socket|socket hang up/.test(output)) {
    why = `cannot reach the package registry (${registry})`;
  } else {
    why = `npm exited with ${code ?? 'a signal'}`;
  }
  return `installing dependencies failed: ${why}; npm said: ${tail(output)}`;
}
