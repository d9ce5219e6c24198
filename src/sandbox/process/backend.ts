// The `process` tier: each sandbox is a runtime process with a clean, explicit
// environment and Node's permission model (reads: its code and the runtime;
// writes: its own tmp dir; no child processes, workers or addons). As root it
// also runs under its own unprivileged uid (so it cannot signal the server or
// other sandboxes) and, for functions without network, in an empty network
// namespace. It is the portable fallback: see docs/security.md for its limits.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chown, mkdir, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { ChildRuntimeSandbox } from '../child-runtime.js';
import { placeCodeFiles } from '../code.js';
import { packageViews } from '../packages.js';
import { readSchedStat } from '../sched-stat.js';
import type { RunDir } from '../run-dir.js';
import type { RuntimeName, Sandbox, SandboxBackend, SandboxShape } from '../types.js';
import { sharedUids, type UidAllocator } from '../uids.js';
import { canHidePaths, hidingLauncher } from './hide-paths.js';

const PAGE = 4096;

export interface ProcessIsolation {
  /** Run each sandbox as its own unprivileged uid (needs root). */
  dropPrivileges: boolean;
  /** Put functions without network into an empty network namespace (needs root). */
  isolateNetwork: boolean;
  /** Start each sandbox in a private mount namespace that hides host socket directories (needs root; hide-paths.ts). */
  hideHostPaths?: boolean;
}

let detected: ProcessIsolation | undefined;

/** What this machine lets the process tier do, tried once per process (the process and isolate tiers both ask). */
export function detectProcessIsolation(): ProcessIsolation {
  return (detected ??= detect());
}

function detect(): ProcessIsolation {
  const root = process.getuid?.() === 0;
  const unshare = root && spawnSync('unshare', ['--net', '--', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--', 'true'], { stdio: 'ignore' }).status === 0;
  return { dropPrivileges: unshare, isolateNetwork: unshare, hideHostPaths: unshare && canHidePaths() };
}

export class ProcessBackend implements SandboxBackend {
  readonly tier = 'process' as const;
  private seq = 0;

  constructor(
    private readonly runDir: RunDir,
    readonly isolation: ProcessIsolation = detectProcessIsolation(),
    /** One uid per sandbox, unique host-wide, so sandboxes cannot signal each other. */
    private readonly uids: UidAllocator = sharedUids(),
  ) {}

  async probe(): Promise<{ ok: boolean; reason: string }> {
    const extras = this.isolation.dropPrivileges
      ? `per-sandbox uid, network namespace${this.isolation.hideHostPaths ? ', mount namespace hiding host socket directories' : ''}`
      : 'no uid or network separation (not root)';
    return { ok: true, reason: `Node permission model, clean environment, ${extras}` };
  }

  supports(runtime: RuntimeName): boolean {
    return runtime === 'node';
  }

  async create(shape: SandboxShape): Promise<Sandbox> {
    const n = this.seq++;
    const id = `p${n.toString(36)}-${process.pid.toString(36)}`;
    const uid = await this.uids.acquire();
    let dir: string;
    try {
      dir = this.runDir.sandboxDir(id, this.isolation.dropPrivileges ? uid : undefined);
    } catch (err) {
      this.uids.release(uid);
      throw err;
    }
    const codeDir = path.join(dir, 'code');
    const tmpDir = path.join(dir, 'tmp');
    await mkdir(codeDir, { mode: 0o755 });
    await mkdir(tmpDir, { mode: 0o700 });
    if (this.isolation.dropPrivileges) await chown(tmpDir, uid, uid);

    const runtime = this.runDir.runtime(shape.runtime);
    // Installed dependencies are read through code/node_modules -> a view under this root (sandbox/packages.ts).
    const views = packageViews(this.runDir);
    const nodeArgs = [
      '--experimental-permission',
      `--allow-fs-read=${runtime}`,
      `--allow-fs-read=${codeDir}/`,
      `--allow-fs-read=${views.root}/`,
      `--allow-fs-read=${tmpDir}/`,
      `--allow-fs-write=${tmpDir}/`,
      `--max-old-space-size=${shape.memoryMb}`,
      '--disable-warning=ExperimentalWarning',
      runtime,
    ];
    let command = process.execPath;
    let args = nodeArgs;
    if (this.isolation.dropPrivileges) {
      // setpriv sets the parent-death signal after the uid change (which would clear it),
      // so a runtime never outlives a server killed with SIGKILL.
      const setpriv = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--pdeathsig=KILL', '--', process.execPath, ...nodeArgs];
      const netns = !shape.network && this.isolation.isolateNetwork;
      if (netns && this.isolation.hideHostPaths) {
        // No network means no host Unix sockets either (/run, /tmp... are out of sight); the run dir
        // stays (code, runtime, packages). Functions with network keep /run: resolv.conf may live there.
        ({ command, args } = hidingLauncher(this.runDir.root, tmpDir, setpriv, true));
      } else {
        command = netns ? 'unshare' : setpriv[0]!;
        args = netns ? ['--net', '--', ...setpriv] : setpriv.slice(1);
      }
    }

    const sandbox = new ChildRuntimeSandbox(id, 'process', shape, {
      placeCode: async (spec) => {
        await placeCodeFiles(spec.codeDir, codeDir);
        if (spec.packages) await symlink(await views.nodeModules(spec.packages.hash, spec.packages.dir), path.join(codeDir, 'node_modules'));
        return path.join(codeDir, spec.entry);
      },
      memory: async (pid) => {
        // An in-memory kernel file: a synchronous read is microseconds, fs.promises four thread-pool round trips.
        const statm = readFileSync(`/proc/${pid}/statm`, 'utf8');
        const rss = Number(statm.split(' ')[1]) * PAGE;
        return { current: rss, peak: rss };
      },
      sched: (pid) => readSchedStat(pid),
      userlandMemoryLimitBytes: (spec) => spec.memoryMb * 1024 * 1024,
      diedOfMemory: (stderr, signal) => signal === 'SIGABRT' && /heap out of memory|Reached heap limit/i.test(stderr),
      cleanup: async () => {
        try {
          await rm(dir, { recursive: true, force: true });
        } finally {
          this.uids.release(uid); // the runtime is gone: no process runs as this uid any more
        }
      },
    });
    // The environment is empty here; the manifest's env arrives with `load`. The
    // working directory is the private tmp dir, so relative paths land there.
    await sandbox.start({ command, args, env: {}, cwd: tmpDir });
    return sandbox;
  }

  async close(): Promise<void> {
    /* the run dir is owned and removed by whoever created it */
  }
}
