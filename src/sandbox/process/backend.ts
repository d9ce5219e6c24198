// The `process` tier: each sandbox is a runtime process with a clean, explicit
// environment and Node's permission model (reads: its code and the runtime;
// writes: its own tmp dir; no child processes, workers or addons). As root it
// also runs under its own unprivileged uid (so it cannot signal the server or
// other sandboxes) and, for functions without network, in an empty network
// namespace. It is the portable fallback: see docs/security.md for its limits.
import { spawnSync } from 'node:child_process';
import { chown, mkdir, readFile, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { ChildRuntimeSandbox } from '../child-runtime.js';
import { placeCodeFiles } from '../code.js';
import { packageViews } from '../packages.js';
import type { RunDir } from '../run-dir.js';
import type { RuntimeName, Sandbox, SandboxBackend, SandboxShape } from '../types.js';

const PAGE = 4096;
/** Sandbox uids are taken from this range, one per sandbox, so sandboxes cannot signal each other. */
const UID_BASE = 200_000;
const UID_SPAN = 100_000;

export interface ProcessIsolation {
  /** Run each sandbox as its own unprivileged uid (needs root). */
  dropPrivileges: boolean;
  /** Put functions without network into an empty network namespace (needs root). */
  isolateNetwork: boolean;
}

/** What this machine lets the process tier do, tried once at start. */
export function detectProcessIsolation(): ProcessIsolation {
  const root = process.getuid?.() === 0;
  const unshare = root && spawnSync('unshare', ['--net', '--', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--', 'true'], { stdio: 'ignore' }).status === 0;
  return { dropPrivileges: unshare, isolateNetwork: unshare };
}

export class ProcessBackend implements SandboxBackend {
  readonly tier = 'process' as const;
  private seq = 0;

  constructor(
    private readonly runDir: RunDir,
    readonly isolation: ProcessIsolation = detectProcessIsolation(),
  ) {}

  async probe(): Promise<{ ok: boolean; reason: string }> {
    const extras = this.isolation.dropPrivileges ? 'per-sandbox uid and network namespace' : 'no uid or network separation (not root)';
    return { ok: true, reason: `Node permission model, clean environment, ${extras}` };
  }

  supports(runtime: RuntimeName): boolean {
    return runtime === 'node';
  }

  async create(shape: SandboxShape): Promise<Sandbox> {
    const n = this.seq++;
    const id = `p${n.toString(36)}-${process.pid.toString(36)}`;
    const dir = this.runDir.sandboxDir(id);
    const codeDir = path.join(dir, 'code');
    const tmpDir = path.join(dir, 'tmp');
    await mkdir(codeDir, { mode: 0o755 });
    await mkdir(tmpDir, { mode: 0o700 });
    const uid = UID_BASE + (n % UID_SPAN);
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
      command = shape.network || !this.isolation.isolateNetwork ? setpriv[0]! : 'unshare';
      args = shape.network || !this.isolation.isolateNetwork ? setpriv.slice(1) : ['--net', '--', ...setpriv];
    }

    const sandbox = new ChildRuntimeSandbox(id, 'process', shape, {
      placeCode: async (spec) => {
        await placeCodeFiles(spec.codeDir, codeDir);
        if (spec.packages) await symlink(await views.nodeModules(spec.packages.hash, spec.packages.dir), path.join(codeDir, 'node_modules'));
        return path.join(codeDir, spec.entry);
      },
      memory: async (pid) => {
        const statm = await readFile(`/proc/${pid}/statm`, 'utf8');
        const rss = Number(statm.split(' ')[1]) * PAGE;
        return { current: rss, peak: rss };
      },
      userlandMemoryLimitBytes: (spec) => spec.memoryMb * 1024 * 1024,
      diedOfMemory: (stderr, signal) => signal === 'SIGABRT' && /heap out of memory|Reached heap limit/i.test(stderr),
      cleanup: () => rm(dir, { recursive: true, force: true }),
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
