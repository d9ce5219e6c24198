// Per-sandbox cgroups, v1 (one hierarchy per controller) or v2 (unified) behind
// one interface, detected once. Every backend owns a parent `lamina-<pid>-<n>`
// in each hierarchy it uses; sandboxes get a child under it. The launcher writes
// its own pid into `procsFiles` before it execs bubblewrap, so everything the
// sandbox ever runs is accounted and limited from its first instruction.
import { existsSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface CgroupLimits {
  memoryBytes: number;
  /** Tasks (threads count: pids.max limits tasks, not processes). */
  pidsMax: number;
  /** Relative CPU share, in cgroup v1 `cpu.shares` units (1024 = default). */
  cpuShares: number;
  /** Hard CPU cap in cores (0 = none). */
  cpuQuotaCores: number;
}

export interface SandboxCgroup {
  /** The cgroup.procs files the launcher must join (one per hierarchy). */
  readonly procsFiles: string[];
  /** The cgroup directories (for tests and diagnostics). */
  readonly dirs: string[];
  memory(): Promise<{ current: number; peak: number }>;
  cpuMs(): Promise<number>;
  /** OOM kills seen in this cgroup; remembered after `remove`. */
  oomKills(): Promise<number>;
  /** Changes the task cap (a function's own `processes` limit, set when it loads). */
  setPidsMax(n: number): Promise<void>;
  /** Changes the memory limit of a live cgroup (the isolate tier grows a host's as isolates join it). */
  setMemoryLimit(bytes: number): Promise<void>;
  /** Resolves once every task is frozen. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** SIGKILLs every task now, except `spare` (synchronous, so it can run from an exit path). */
  killAll(spare?: number): void;
  /** Kills what is left, waits for the cgroup to empty, removes it. Idempotent. */
  remove(): Promise<void>;
}

export interface CgroupManager {
  readonly version: 1 | 2;
  /** e.g. "cgroup v1 (memory, pids, cpu, cpuacct, freezer)". */
  readonly description: string;
  /** The backend's parent directories. */
  readonly parents: string[];
  create(name: string, limits: CgroupLimits): Promise<SandboxCgroup>;
  /** Removes every sandbox cgroup still present and the parents. */
  close(): Promise<void>;
}

interface Mount {
  /** Root of the hierarchy as this mount shows it (not '/' inside some containers). */
  root: string;
  dir: string;
  fstype: string;
  options: string[];
}

const POLL_MS = 1;
const FREEZE_TIMEOUT_MS = 2000;
const EMPTY_TIMEOUT_MS = 3000;
let parentSeq = 0;

function mounts(): Mount[] {
  const out: Mount[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const [fstype, , superOpts] = post.split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    out.push({ root: unescape(f[3]!), dir: unescape(f[4]!), fstype, options: (superOpts ?? '').split(',') });
  }
  return out;
}

/** mountinfo escapes spaces and the like as \ooo. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** This process's cgroup path per v1 controller, and the v2 path under key ''. */
function ownCgroups(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, ctrls, p] = line.split(/:(.*?):/);
    if (p === undefined || ctrls === undefined) continue;
    if (ctrls === '') m.set('', p);
    for (const c of ctrls.split(',')) if (c) m.set(c, p);
  }
  return m;
}

/** The directory of cgroup `p` (as /proc/self/cgroup names it) on this mount. */
function dirOf(mount: Mount, p: string): string {
  const rel = mount.root !== '/' && (p === mount.root || p.startsWith(mount.root + '/')) ? p.slice(mount.root.length) : p;
  return path.join(mount.dir, rel);
}

// cgroup files are generated in memory by the kernel: one synchronous read costs
// microseconds, where fs.promises pays four thread-pool round trips (the memory
// sampler reads them for every busy sandbox, 20 times a second). Async
// signatures are kept, so a read error is still a rejection.
async function readNum(file: string): Promise<number> {
  return Number(readFileSync(file, 'utf8').trim());
}

/** `key value` lines (memory.events, cpu.stat, memory.oom_control). */
async function readKeyed(file: string, key: string): Promise<number | undefined> {
  const text = readFileSync(file, 'utf8');
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

function killPids(procsFile: string, spare?: number): number {
  let n = 0;
  let text = '';
  try {
    text = readFileSync(procsFile, 'utf8');
  } catch {
    return 0;
  }
  for (const s of text.split('\n')) {
    const pid = Number(s);
    if (!pid || pid === spare) continue;
    try {
      process.kill(pid, 'SIGKILL');
      n++;
    } catch {
      /* already gone */
    }
  }
  return n;
}

function isEmpty(procsFile: string): boolean {
  try {
    return readFileSync(procsFile, 'utf8').trim() === '';
  } catch {
    return true;
  }
}

async function rmdirRetry(dir: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || i >= 50) throw err;
      await sleep(20);
    }
  }
}

/** Removes parents left by a Lamina process that died without closing (their sandboxes died with it). */
function sweepStale(base: string): void {
  let entries: string[];
  try {
    entries = readdirSync(base);
  } catch {
    return;
  }
  for (const name of entries) {
    const m = /^lamina-(\d+)-\d+$/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // its owner is alive
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM') continue;
    }
    const dir = path.join(base, name);
    try {
      for (const child of readdirSync(dir, { withFileTypes: true })) if (child.isDirectory()) rmdirSync(path.join(dir, child.name));
      rmdirSync(dir);
    } catch {
      /* busy or not ours to remove */
    }
  }
}

abstract class BaseCgroup implements SandboxCgroup {
  private removed: Promise<void> | undefined;
  private lastOom = 0;
  constructor(
    readonly dirs: string[],
    readonly procsFiles: string[],
    private readonly onRemoved: () => void,
  ) {}
  abstract memory(): Promise<{ current: number; peak: number }>;
  abstract cpuMs(): Promise<number>;
  abstract setPidsMax(n: number): Promise<void>;
  abstract freeze(): Promise<void>;
  abstract thaw(): Promise<void>;
  abstract killAll(spare?: number): void;
  abstract setMemoryLimit(bytes: number): Promise<void>;
  protected abstract readOomKills(): Promise<number>;

  async oomKills(): Promise<number> {
    // Once the cgroup is gone the read fails and the last count stands.
    this.lastOom = Math.max(this.lastOom, await this.readOomKills().catch(() => 0));
    return this.lastOom;
  }

  remove(): Promise<void> {
    return (this.removed ??= this.doRemove());
  }

  private async doRemove(): Promise<void> {
    await this.oomKills();
    const deadline = Date.now() + EMPTY_TIMEOUT_MS;
    for (;;) {
      this.killAll();
      if (this.procsFiles.every(isEmpty)) break;
      if (Date.now() > deadline) throw new Error(`cgroup ${this.dirs[0]} did not empty`);
      await sleep(5);
    }
    for (const d of this.dirs) await rmdirRetry(d);
    this.onRemoved();
  }
}

class V1Cgroup extends BaseCgroup {
  constructor(
    private readonly dir: Record<'memory' | 'pids' | 'cpuacct' | 'freezer', string> & { cpu?: string },
    onRemoved: () => void,
  ) {
    const dirs = [...new Set(Object.values(dir).filter((d): d is string => !!d))];
    super(dirs, dirs.map((d) => path.join(d, 'cgroup.procs')), onRemoved);
  }

  async setPidsMax(n: number): Promise<void> {
    await writeFile(path.join(this.dir.pids, 'pids.max'), String(n));
  }

  async setMemoryLimit(bytes: number): Promise<void> {
    const mem = path.join(this.dir.memory, 'memory.limit_in_bytes');
    const memsw = path.join(this.dir.memory, 'memory.memsw.limit_in_bytes');
    if (!existsSync(memsw)) return writeFile(mem, String(bytes));
    // memory+swap must stay at or above the memory limit: raise it first, lower it last.
    if (bytes > (await readNum(mem))) {
      await writeFile(memsw, String(bytes));
      await writeFile(mem, String(bytes));
    } else {
      await writeFile(mem, String(bytes));
      await writeFile(memsw, String(bytes));
    }
  }

  async setLimits(l: CgroupLimits): Promise<void> {
    const mem = this.dir.memory;
    await writeFile(path.join(mem, 'memory.limit_in_bytes'), String(l.memoryBytes));
    // memsw (memory+swap) exists when swap accounting is on: equal limits mean no swap.
    if (existsSync(path.join(mem, 'memory.memsw.limit_in_bytes'))) await writeFile(path.join(mem, 'memory.memsw.limit_in_bytes'), String(l.memoryBytes));
    await writeFile(path.join(mem, 'memory.swappiness'), '0').catch(() => undefined);
    await this.setPidsMax(l.pidsMax);
    if (this.dir.cpu) {
      await writeFile(path.join(this.dir.cpu, 'cpu.shares'), String(l.cpuShares));
      if (l.cpuQuotaCores > 0) {
        await writeFile(path.join(this.dir.cpu, 'cpu.cfs_period_us'), '100000');
        await writeFile(path.join(this.dir.cpu, 'cpu.cfs_quota_us'), String(Math.round(100000 * l.cpuQuotaCores)));
      }
    }
  }

  async memory(): Promise<{ current: number; peak: number }> {
    const [current, peak] = await Promise.all([readNum(path.join(this.dir.memory, 'memory.usage_in_bytes')), readNum(path.join(this.dir.memory, 'memory.max_usage_in_bytes'))]);
    return { current, peak };
  }

  async cpuMs(): Promise<number> {
    return (await readNum(path.join(this.dir.cpuacct, 'cpuacct.usage'))) / 1e6;
  }

  protected async readOomKills(): Promise<number> {
    const kills = await readKeyed(path.join(this.dir.memory, 'memory.oom_control'), 'oom_kill');
    // Kernels before 4.13 have no oom_kill count: a hit on the limit is the best sign left.
    return kills ?? (await readNum(path.join(this.dir.memory, 'memory.failcnt')));
  }

  async freeze(): Promise<void> {
    const state = path.join(this.dir.freezer, 'freezer.state');
    const deadline = Date.now() + FREEZE_TIMEOUT_MS;
    await writeFile(state, 'FROZEN');
    // v1 freezing is asynchronous (FREEZING until every task stops); re-writing retries stragglers.
    while ((await readFile(state, 'utf8')).trim() !== 'FROZEN') {
      if (Date.now() > deadline) throw new Error('the sandbox did not freeze in time');
      await sleep(POLL_MS);
      await writeFile(state, 'FROZEN');
    }
  }

  async thaw(): Promise<void> {
    await writeFile(path.join(this.dir.freezer, 'freezer.state'), 'THAWED');
  }

  killAll(spare?: number): void {
    // Freeze first so nothing forks while the list is read; a frozen task dies once thawed.
    const state = path.join(this.dir.freezer, 'freezer.state');
    try {
      writeFileSync(state, 'FROZEN');
    } catch {
      /* gone already */
    }
    for (const f of this.procsFiles) killPids(f, spare);
    try {
      writeFileSync(state, 'THAWED');
    } catch {
      /* gone already */
    }
  }
}

class V2Cgroup extends BaseCgroup {
  async setPidsMax(n: number): Promise<void> {
    if (this.controllers.has('pids')) await writeFile(path.join(this.dir, 'pids.max'), String(n));
  }

  constructor(
    private readonly dir: string,
    private readonly controllers: Set<string>,
    onRemoved: () => void,
  ) {
    super([dir], [path.join(dir, 'cgroup.procs')], onRemoved);
  }

  async setMemoryLimit(bytes: number): Promise<void> {
    if (this.controllers.has('memory')) await writeFile(path.join(this.dir, 'memory.max'), String(bytes));
  }

  async setLimits(l: CgroupLimits): Promise<void> {
    const w = (f: string, v: string) => writeFile(path.join(this.dir, f), v);
    if (this.controllers.has('memory')) {
      await w('memory.max', String(l.memoryBytes));
      if (existsSync(path.join(this.dir, 'memory.swap.max'))) await w('memory.swap.max', '0');
      // On OOM, kill the whole sandbox rather than one task of it.
      if (existsSync(path.join(this.dir, 'memory.oom.group'))) await w('memory.oom.group', '1');
    }
    await this.setPidsMax(l.pidsMax);
    if (this.controllers.has('cpu')) {
      // cpu.weight (1..10000, default 100) from cpu.shares (2..262144, default 1024), as runc maps it.
      await w('cpu.weight', String(Math.round(1 + ((l.cpuShares - 2) * 9999) / 262142)));
      if (l.cpuQuotaCores > 0) await w('cpu.max', `${Math.round(100000 * l.cpuQuotaCores)} 100000`);
    }
  }

  async memory(): Promise<{ current: number; peak: number }> {
    const current = await readNum(path.join(this.dir, 'memory.current'));
    // memory.peak needs Linux 5.19; before that the sampler's maximum is all there is.
    const peak = await readNum(path.join(this.dir, 'memory.peak')).catch(() => current);
    return { current, peak };
  }

  async cpuMs(): Promise<number> {
    return ((await readKeyed(path.join(this.dir, 'cpu.stat'), 'usage_usec')) ?? 0) / 1000;
  }

  protected async readOomKills(): Promise<number> {
    return (await readKeyed(path.join(this.dir, 'memory.events'), 'oom_kill')) ?? 0;
  }

  async freeze(): Promise<void> {
    await writeFile(path.join(this.dir, 'cgroup.freeze'), '1');
    const deadline = Date.now() + FREEZE_TIMEOUT_MS;
    while (!/^frozen 1$/m.test(await readFile(path.join(this.dir, 'cgroup.events'), 'utf8'))) {
      if (Date.now() > deadline) throw new Error('the sandbox did not freeze in time');
      await sleep(POLL_MS);
    }
  }

  async thaw(): Promise<void> {
    await writeFile(path.join(this.dir, 'cgroup.freeze'), '0');
  }

  killAll(spare?: number): void {
    // cgroup.kill (Linux 5.14) kills atomically, forks included; else signal each (v2 delivers SIGKILL to frozen tasks).
    if (spare === undefined) {
      try {
        writeFileSync(path.join(this.dir, 'cgroup.kill'), '1');
        return;
      } catch {
        /* older kernel, or gone */
      }
    }
    killPids(this.procsFiles[0]!, spare);
  }
}

abstract class BaseManager implements CgroupManager {
  abstract readonly version: 1 | 2;
  abstract readonly description: string;
  abstract readonly parents: string[];
  protected live = new Set<SandboxCgroup>();
  abstract create(name: string, limits: CgroupLimits): Promise<SandboxCgroup>;

  async close(): Promise<void> {
    await Promise.allSettled([...this.live].map((c) => c.remove()));
    for (const p of [...this.parents].reverse()) await rmdirRetry(p).catch(() => undefined);
  }
}

const V1_REQUIRED = ['memory', 'pids', 'cpuacct', 'freezer'] as const;

class V1Manager extends BaseManager {
  readonly version = 1 as const;
  readonly description: string;
  readonly parents: string[];
  private constructor(private readonly parentOf: Record<string, string>) {
    super();
    this.parents = [...new Set(Object.values(parentOf))];
    this.description = `cgroup v1 (${Object.keys(parentOf).join(', ')})`;
  }

  static async open(all: Mount[], parentName?: string): Promise<V1Manager> {
    const own = ownCgroups();
    const parentOf: Record<string, string> = {};
    const missing: string[] = [];
    const name = `lamina-${process.pid}-${parentSeq++}`;
    for (const c of [...V1_REQUIRED, 'cpu']) {
      const m = all.find((x) => x.fstype === 'cgroup' && x.options.includes(c));
      if (!m) {
        if (c !== 'cpu') missing.push(c);
        continue;
      }
      // Nest under our own cgroup, so limits placed on Lamina itself still bound its sandboxes.
      const base = parentName ? dirOf(m, parentName) : dirOf(m, own.get(c) ?? '/');
      parentOf[c] = path.join(base, name);
    }
    if (missing.length) throw new Error(`cgroup v1 is missing the ${missing.join(', ')} controller${missing.length > 1 ? 's' : ''}`);
    const mgr = new V1Manager(parentOf);
    for (const p of mgr.parents) {
      sweepStale(path.dirname(p));
      try {
        await mkdir(p);
      } catch (err) {
        await mgr.close();
        throw new Error(`cgroup v1: cannot create ${p} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); run Lamina as root or give it a delegated parent cgroup`);
      }
    }
    return mgr;
  }

  async create(name: string, limits: CgroupLimits): Promise<SandboxCgroup> {
    const dir = Object.fromEntries(Object.entries(this.parentOf).map(([c, p]) => [c, path.join(p, name)])) as ConstructorParameters<typeof V1Cgroup>[0];
    const made: string[] = [];
    const cg: V1Cgroup = new V1Cgroup(dir, () => this.live.delete(cg));
    try {
      for (const d of cg.dirs) {
        await mkdir(d);
        made.push(d);
      }
      await cg.setLimits(limits);
    } catch (err) {
      for (const d of made.reverse()) await rmdir(d).catch(() => undefined);
      throw err;
    }
    this.live.add(cg);
    return cg;
  }
}

class V2Manager extends BaseManager {
  readonly version = 2 as const;
  readonly description: string;
  readonly parents: string[];
  private constructor(
    private readonly parent: string,
    private readonly controllers: Set<string>,
  ) {
    super();
    this.parents = [parent];
    this.description = `cgroup v2 (${[...controllers].join(', ') || 'no controllers'}, freezer)`;
  }

  /** `required`: controllers that must be delegable (tests of the core features pass none). */
  static async open(mount: Mount, required: string[], parentPath?: string): Promise<V2Manager> {
    // Our own cgroup holds processes, and v2 forbids controllers on an inner cgroup with
    // processes, so the parent goes at the hierarchy's root unless one is given (delegated).
    const base = parentPath ? dirOf(mount, parentPath) : mount.dir;
    const available = new Set(readFileSync(path.join(base, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean));
    const wanted = ['memory', 'pids', 'cpu'].filter((c) => available.has(c));
    const missing = required.filter((c) => !available.has(c));
    if (missing.length) throw new Error(`cgroup v2 at ${base} does not offer the ${missing.join(', ')} controller${missing.length > 1 ? 's' : ''}`);
    sweepStale(base);
    const enable = async (dir: string): Promise<void> => {
      const on = readFileSync(path.join(dir, 'cgroup.subtree_control'), 'utf8');
      const need = wanted.filter((c) => !on.split(/\s+/).includes(c));
      if (need.length) await writeFile(path.join(dir, 'cgroup.subtree_control'), need.map((c) => `+${c}`).join(' '));
    };
    const parent = path.join(base, `lamina-${process.pid}-${parentSeq++}`);
    try {
      await enable(base);
    } catch (err) {
      throw new Error(`cgroup v2: cannot enable ${wanted.join(', ')} in ${base} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); run Lamina as root or give it a delegated parent cgroup`);
    }
    try {
      await mkdir(parent);
    } catch (err) {
      throw new Error(`cgroup v2: cannot create ${parent} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); run Lamina as root or give it a delegated parent cgroup`);
    }
    try {
      await enable(parent);
    } catch (err) {
      await rmdir(parent).catch(() => undefined);
      throw new Error(`cgroup v2: cannot enable ${wanted.join(', ')} in ${parent}: ${(err as Error).message}`);
    }
    return new V2Manager(parent, new Set(wanted));
  }

  async create(name: string, limits: CgroupLimits): Promise<SandboxCgroup> {
    const dir = path.join(this.parent, name);
    await mkdir(dir);
    const cg: V2Cgroup = new V2Cgroup(dir, this.controllers, () => this.live.delete(cg));
    try {
      await cg.setLimits(limits);
    } catch (err) {
      await rmdir(dir).catch(() => undefined);
      throw err;
    }
    this.live.add(cg);
    return cg;
  }
}

export interface CgroupOptions {
  /** Force a version (default: v2 when it offers memory and pids, else v1). */
  version?: 1 | 2;
  /** Parent cgroup path (as /proc/self/cgroup spells paths), e.g. a delegated subtree for non-root use. */
  parent?: string;
  /** v2 only: controllers that must be present (default memory, pids). */
  requireControllers?: string[];
}

/** Detects the cgroup layout and creates the backend's parent cgroups; throws with the reason when unusable. */
export async function openCgroups(opts: CgroupOptions = {}): Promise<CgroupManager> {
  const all = mounts();
  const v2 = all.find((m) => m.fstype === 'cgroup2');
  const required = opts.requireControllers ?? ['memory', 'pids'];
  const v2Offers = (): boolean => {
    if (!v2) return false;
    try {
      const c = readFileSync(path.join(v2.dir, 'cgroup.controllers'), 'utf8').split(/\s+/);
      return required.every((r) => c.includes(r));
    } catch {
      return false;
    }
  };
  const version = opts.version ?? (v2Offers() ? 2 : all.some((m) => m.fstype === 'cgroup') ? 1 : v2 ? 2 : undefined);
  if (version === 2) {
    if (!v2) throw new Error('no cgroup v2 mount');
    return V2Manager.open(v2, required, opts.parent);
  }
  if (version === 1) return V1Manager.open(all, opts.parent);
  throw new Error('no cgroup file system is mounted');
}
