// The `container` tier: each sandbox is the node runtime inside bubblewrap
// namespaces (user, pid, mount, ipc, uts, cgroup; net unless the function has
// network), on a read-only root holding only node, its libraries, the runtime and
// the function's code, under a seccomp deny list and its own cgroup (memory,
// pids, CPU share, freezer). Sandboxes are started generic and wait in the pool
// already inside all of that; `load` only fills the bind-mounted code directory.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ChildRuntimeSandbox } from '../child-runtime.js';
import { placeCodeFiles } from '../code.js';
import { packageViews } from '../packages.js';
import type { RunDir } from '../run-dir.js';
import type { RuntimeName, Sandbox, SandboxBackend, SandboxShape } from '../types.js';
import { readSchedStatOfProcs } from '../sched-stat.js';
import { sharedUids } from '../uids.js';
import { PYTHON, SANDBOX_PATHS, bwrapArgs, etcContents, nodeArgs, nodeBinds, pythonBinds, pythonExtensionBinds, type Bind } from './bwrap-args.js';
import { openCgroups, type CgroupLimits, type CgroupManager, type CgroupOptions, type SandboxCgroup } from './cgroups.js';
import { seccompProgram } from './seccomp.js';

const MiB = 1024 * 1024;
/** bwrap reads the seccomp program from this descriptor (0-2 stdio, 3 the protocol channel). */
const SECCOMP_FD = 4;

// Joins the sandbox's cgroups, then becomes bwrap: nothing runs outside the limits.
const LAUNCHER = 'set -f; IFS=:; for f in $LAMINA_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; unset LAMINA_CGROUP_PROCS IFS; exec "$@"';

export interface ContainerOptions {
  /** Node's permission model inside the container as well (default true: defence in depth, and the same rules as the process tier). */
  nodePermissions?: boolean;
  /** Task cap per sandbox (threads count; the idle runtime uses about 10). */
  pidsMax?: number;
  /** Size of the private /tmp, from the memory cap (default: half of it, 16..512 MiB; tmpfs pages are also charged to the memory cgroup). */
  tmpMb?: (memoryMb: number) => number;
  cgroups?: CgroupOptions;
}

/** How bwrap gets its privileges. */
type Mode =
  /** Root drops to a per-sandbox uid first; bwrap then works in its own user namespace. */
  | 'setpriv'
  /** Root runs bwrap directly (the sandbox's uid maps to host root, still without capabilities). */
  | 'root'
  /** Lamina is not root: bwrap's user namespace maps the sandbox to Lamina's uid. */
  | 'user';

interface Setup {
  bwrap: string;
  setpriv: string | undefined;
  cgroups: CgroupManager;
  /** What each runtime needs in the sandbox's root (its interpreter and libraries). */
  rootBinds: Partial<Record<RuntimeName, Bind[]>>;
  etcFiles: Bind[];
  seccompFile: string;
  filesDir: string;
  mode: Mode;
}

function which(cmd: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/bin', '/usr/sbin', '/sbin']);
  for (const d of dirs) {
    const p = path.join(d, cmd);
    if (d && existsSync(p)) return p;
  }
  return undefined;
}

export class ContainerBackend implements SandboxBackend {
  readonly tier = 'container' as const;
  private seq = 0;
  private setup: Promise<Setup> | undefined;
  private probed: Promise<{ ok: boolean; reason: string }> | undefined;
  private live = new Set<Sandbox>();
  private closed = false;
  private readonly opts: Required<Omit<ContainerOptions, 'cgroups'>> & Pick<ContainerOptions, 'cgroups'>;

  constructor(
    private readonly runDir: RunDir,
    private readonly log: (msg: string) => void = () => undefined,
    opts: ContainerOptions = {},
  ) {
    this.opts = {
      nodePermissions: opts.nodePermissions ?? true,
      pidsMax: opts.pidsMax ?? 64,
      tmpMb: opts.tmpMb ?? ((m) => Math.min(512, Math.max(16, Math.floor(m / 2)))),
      cgroups: opts.cgroups,
    };
  }

  /** The cgroup layout in use, once probed (tests and diagnostics). */
  cgroups: CgroupManager | undefined;

  probe(): Promise<{ ok: boolean; reason: string }> {
    return (this.probed ??= this.doProbe());
  }

  supports(runtime: RuntimeName): boolean {
    return runtime === 'node' || (runtime === 'python' && this.python !== undefined);
  }

  /** Python's binds, looked up once when the backend is made (supports() is synchronous). */
  private readonly python = pythonBinds();

  async create(shape: SandboxShape): Promise<Sandbox> {
    if (this.closed) throw new Error('the container backend is closed');
    const probe = await this.probe();
    if (!probe.ok) throw new Error(`the container tier is unavailable: ${probe.reason}`);
    const s = await this.prepare();
    const n = this.seq++;
    const id = `c${n.toString(36)}-${process.pid.toString(36)}`;
    // A host uid per sandbox, unique host-wide (sandbox/uids.ts); bwrap runs as it in setpriv mode.
    const uid = await sharedUids().acquire();
    let dir: string;
    let cg: SandboxCgroup;
    try {
      dir = this.runDir.sandboxDir(id, s.mode === 'setpriv' ? uid : undefined);
    } catch (err) {
      sharedUids().release(uid);
      throw err;
    }
    const codeDir = path.join(dir, 'code');
    try {
      await mkdir(codeDir, { mode: 0o755 });
      cg = await s.cgroups.create(id, this.limits(shape));
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      sharedUids().release(uid);
      throw err;
    }

    const sandbox = new ChildRuntimeSandbox(id, 'container', shape, {
      placeCode: async (spec) => {
        // The directory is already mounted at /var/task: files placed now appear inside.
        await placeCodeFiles(spec.codeDir, codeDir);
        const entry = path.posix.join(SANDBOX_PATHS.code, spec.entry);
        if (spec.packages) {
          // The views directory is mounted at /var/packages; the link is resolved inside the sandbox.
          const view = await packageViews(this.runDir).nodeModules(spec.packages.hash, spec.packages.dir);
          const inside = path.posix.join(SANDBOX_PATHS.packages, path.basename(path.dirname(view)), path.basename(view));
          // Python: the runtime puts the requirements' site-packages (read-only) on its import path.
          if (shape.runtime === 'python') return { entry, importPaths: [inside] };
          await symlink(inside, path.join(codeDir, 'node_modules'));
        }
        return entry;
      },
      memory: async () => {
        const [m, cpuMs] = await Promise.all([cg.memory(), cg.cpuMs()]);
        return { ...m, cpuMs };
      },
      // Every process of the sandbox: bwrap's two (asleep) and the runtime.
      sched: () => readSchedStatOfProcs(cg.procsFiles[0]!),
      // V8 prints this when the heap cap is hit; the cgroup counts kernel OOM kills.
      diedOfMemory: async (stderr) => /FATAL ERROR:.*(heap limit|heap out of memory)/i.test(stderr) || (await cg.oomKills()) > 0,
      kill: (child) => {
        // Kill everything but the outer bwrap: the namespace dies with its pid 1, and the
        // outer bwrap reaps it and exits (killing it first would leave pid 1 to the host's init).
        cg.killAll(child.pid);
        setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) {
            cg.killAll();
            child.kill('SIGKILL');
          }
        }, 250).unref();
      },
      // A function's own task cap (ol.yaml limits.procs / manifest "processes") replaces the tier's default.
      loaded: async (spec) => {
        if (spec.maxProcesses !== undefined) await cg.setPidsMax(spec.maxProcesses);
      },
      pause: () => cg.freeze(),
      resume: () => cg.thaw(),
      cleanup: async () => {
        this.live.delete(sandbox);
        try {
          await cg.remove();
        } catch (err) {
          this.log(`container ${id}: ${(err as Error).message}`);
        }
        await rm(dir, { recursive: true, force: true });
        sharedUids().release(uid);
      },
    });
    this.live.add(sandbox);
    const command =
      shape.runtime === 'python'
        ? // -I: ignore PYTHON* variables and the user site; the cgroup is the memory limit.
          [PYTHON, '-I', `${SANDBOX_PATHS.runtimeDir}/runtime.py`]
        : [process.execPath, ...nodeArgs({ memoryMb: shape.memoryMb, permissions: this.opts.nodePermissions, runtimePath: `${SANDBOX_PATHS.runtimeDir}/node.mjs` })];
    const launch = this.launch(s, shape, uid, cg, codeDir, command);
    const fd = openSync(s.seccompFile, 'r');
    try {
      // The environment is empty (bwrap --clearenv); the manifest's env arrives with `load`.
      await sandbox.start({ ...launch, extraFds: [fd] });
    } finally {
      closeSync(fd);
    }
    return sandbox;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.live].map((s) => s.destroy()));
    if (!this.setup) return;
    const s = await this.setup.catch(() => undefined);
    if (!s) return;
    await s.cgroups.close();
    await rm(s.filesDir, { recursive: true, force: true });
  }

  private limits(shape: SandboxShape): CgroupLimits {
    return {
      memoryBytes: shape.memoryMb * MiB,
      pidsMax: this.opts.pidsMax,
      // CPU share in proportion to memory, as Lambda does (1024 MB = one default share).
      cpuShares: Math.min(262144, Math.max(2, shape.memoryMb)),
      cpuQuotaCores: 1,
    };
  }

  private launch(s: Setup, shape: SandboxShape, uid: number, cg: SandboxCgroup, codeDir: string, command: string[]): { command: string; args: string[]; env: Record<string, string> } {
    const bw = bwrapArgs({
      rootBinds: s.rootBinds[shape.runtime] ?? [],
      etcFiles: s.etcFiles,
      runtimeFile: this.runDir.runtime(shape.runtime),
      runtimeName: shape.runtime === 'python' ? 'runtime.py' : 'node.mjs',
      codeDir,
      packagesDir: packageViews(this.runDir).root,
      tmpBytes: this.opts.tmpMb(shape.memoryMb) * MiB,
      network: shape.network,
      seccompFd: SECCOMP_FD,
    });
    const priv = s.mode === 'setpriv' ? [s.setpriv!, `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'] : [];
    return {
      command: '/bin/sh',
      args: ['-c', LAUNCHER, 'lamina-container', ...priv, s.bwrap, ...bw, ...command],
      env: { LAMINA_CGROUP_PROCS: cg.procsFiles.join(':') },
    };
  }

  /** Everything sandboxes share, made once. */
  private prepare(): Promise<Setup> {
    return (this.setup ??= (async () => {
      const bwrap = which('bwrap');
      if (!bwrap) throw new Error('bubblewrap is not installed (apt-get install bubblewrap)');
      if (!existsSync('/bin/sh')) throw new Error('/bin/sh is missing');
      const root = process.getuid?.() === 0;
      const setpriv = root ? which('setpriv') : undefined;
      const filesDir = path.join(this.runDir.root, 'container');
      await mkdir(filesDir, { recursive: true, mode: 0o755 });
      const seccompFile = path.join(filesDir, 'seccomp.bpf');
      await writeFile(seccompFile, seccompProgram(), { mode: 0o400 });
      const etcFiles: Bind[] = [];
      for (const [name, text] of Object.entries(etcContents())) {
        const f = path.join(filesDir, name);
        await writeFile(f, text);
        await chmod(f, 0o444);
        etcFiles.push([f, `/etc/${name}`]);
      }
      let cgroups: CgroupManager;
      try {
        cgroups = await openCgroups(this.opts.cgroups);
      } catch (err) {
        await rm(filesDir, { recursive: true, force: true });
        throw err;
      }
      this.cgroups = cgroups;
      // Python's extension modules' libraries (ctypes, ssl, sqlite3...): listed asynchronously, once.
      const python = this.python && [...this.python, ...(await pythonExtensionBinds(this.python))];
      return { bwrap, setpriv, cgroups, rootBinds: { node: nodeBinds(), python }, etcFiles, seccompFile, filesDir, mode: root ? (setpriv ? 'setpriv' : 'root') : 'user' };
    })());
  }

  private async doProbe(): Promise<{ ok: boolean; reason: string }> {
    let s: Setup;
    try {
      s = await this.prepare();
    } catch (err) {
      return { ok: false, reason: (err as Error).message };
    }
    // Really start one: a cgroup with limits, the launcher, bwrap with seccomp, node inside.
    const modes: Mode[] = s.mode === 'setpriv' ? ['setpriv', 'root'] : [s.mode];
    let failure = '';
    for (const mode of modes) {
      s.mode = mode;
      failure = await this.trial(s);
      if (!failure) {
        const who = mode === 'setpriv' ? 'a per-sandbox host uid' : mode === 'root' ? 'host root without capabilities (unprivileged user namespaces are refused)' : "Lamina's own uid";
        return { ok: true, reason: `bubblewrap namespaces, seccomp, read-only root, ${s.cgroups.description}; sandboxes run as ${who}` };
      }
      this.log(`container tier: a trial sandbox (${mode}) failed: ${failure}`);
    }
    return { ok: false, reason: `${s.cgroups.description} works, but a trial sandbox failed: ${failure}` };
  }

  /** Runs `node -e 0` the way a sandbox runs; returns '' on success, else why not. */
  private async trial(s: Setup): Promise<string> {
    const id = `probe-${this.seq++}`;
    const uid = await sharedUids().acquire();
    const dir = this.runDir.sandboxDir(id, s.mode === 'setpriv' ? uid : undefined);
    const codeDir = path.join(dir, 'code');
    let cg: SandboxCgroup | undefined;
    try {
      await mkdir(codeDir, { mode: 0o755 });
      const shape: SandboxShape = { runtime: 'node', memoryMb: 128, network: false };
      cg = await s.cgroups.create(id, this.limits(shape));
      const { command, args, env } = this.launch(s, shape, uid, cg, codeDir, [process.execPath, '-e', 'require("fs").readFileSync("/proc/self/status", "utf8").includes("Seccomp:\\t2") || process.exit(3)']);
      const fd = openSync(s.seccompFile, 'r');
      const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe', 'ignore', fd] });
      closeSync(fd);
      let err = '';
      child.stderr!.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-2000)));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.on('error', (e) => ((err += e.message), clearTimeout(timer), resolve(-1)));
        child.on('exit', (c) => (clearTimeout(timer), resolve(c)));
      });
      if (code === 0) return '';
      return code === 3 ? 'the seccomp filter was not applied' : `exit ${code}: ${err.trim().split('\n').slice(-2).join(' | ') || 'no output'}`;
    } catch (err) {
      return (err as Error).message;
    } finally {
      await cg?.remove().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      sharedUids().release(uid);
    }
  }
}
