// The `isolate` tier: each sandbox is a V8 isolate (isolated-vm) with its own
// heap limit, running JavaScript without Node's built-ins. Isolates live in
// helper "isolate host" processes, never in the server: a single oversized
// allocation makes V8 abort the process holding the isolate, so a host can
// die, the server cannot. Up to `functionsPerHost` functions share a host (as
// Cloudflare runs many tenants' isolates in one process; 1 gives each function
// its own), hosts are never shared across network modes, and a function that
// was running when a shared host died is quarantined in a host of its own, so
// it can take down its neighbours once at most (docs/architecture.md). Hosts
// get the process tier's confinement: clean environment, Node's permission
// model (reads: the host's own files; no writes, child processes or workers),
// and as root their own uid and, without network, an empty network namespace.
import path from 'node:path';
import { detectProcessIsolation, type ProcessIsolation } from '../process/backend.js';
import type { RunDir } from '../run-dir.js';
import type { LoadSpec, RuntimeName, Sandbox, SandboxBackend, SandboxShape } from '../types.js';
import { buildHostFiles, type HostFiles } from './build.js';
import { openCgroups, type CgroupManager } from '../container/cgroups.js';
import { HostProcess, type HostCgroup } from './host-process.js';
import { functionKey, IsolateSandbox, type HostBroker } from './sandbox.js';
import { sharedUids } from '../uids.js';


/** A host's own memory beyond its isolates' caps: Node, isolated-vm and the protocol buffers. */
const HOST_OVERHEAD_MB = 96;
/**
 * Joins the cgroup (the cgroup.procs files before `--`) and execs the rest, so the
 * host is accounted from its first allocation; run as root, before setpriv drops it.
 */
const JOIN_CGROUP = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';

export interface IsolateBackendOptions {
  isolation?: ProcessIsolation;
  /** How long a host with no isolates lives on (ms). */
  hostIdleMs?: number;
  /** Keep one started host per network mode ready for the next function. */
  spareHosts?: boolean;
  /** Distinct functions whose isolates may share one host (default 50; 1: a host per function). */
  functionsPerHost?: number;
}

export const DEFAULT_FUNCTIONS_PER_HOST = 50;

/** One host and the functions assigned to it (a function's isolates all go to one host). */
interface HostSlot {
  id: number;
  network: boolean;
  /** A quarantined function's host: nobody joins it. */
  dedicated: boolean;
  /** Function (`name:net`) -> isolates of it placed here (reserved before the host has started). */
  functions: Map<string, number>;
  host: Promise<HostProcess>;
  gone: boolean;
}

export class IsolateBackend implements SandboxBackend, HostBroker {
  readonly tier = 'isolate' as const;
  private files: Promise<HostFiles> | undefined;
  private readonly slots = new Set<HostSlot>();
  /** Function (`name:net`) -> the slot its isolates live in. */
  private readonly assigned = new Map<string, HostSlot>();
  private readonly slotOf = new Map<HostProcess, HostSlot>();
  /** Functions that were running when a shared host died: from then on each gets a host of its own. */
  private readonly quarantined = new Set<string>();
  private readonly perHost: number;
  private slotSeq = 0;
  private readonly spares = new Map<boolean, Promise<HostProcess>>();
  private readonly all = new Set<HostProcess>();
  private readonly isolation: ProcessIsolation;
  private seq = 0;
  private closed = false;
  /** The hosts' cgroups, where the machine has them (root): V8's heap cap misses WebAssembly memory, the cgroup does not. */
  private cgroups: Promise<CgroupManager | undefined> | undefined;
  private hostSeq = 0;

  constructor(
    private readonly runDir: RunDir,
    private readonly log: (msg: string) => void = () => undefined,
    private readonly opts: IsolateBackendOptions = {},
  ) {
    this.isolation = opts.isolation ?? detectProcessIsolation();
    const n = opts.functionsPerHost ?? DEFAULT_FUNCTIONS_PER_HOST;
    if (!Number.isInteger(n) || n < 1) throw new Error(`functions per isolate host must be a whole number of at least 1 (got ${n})`);
    this.perHost = n;
  }

  async probe(): Promise<{ ok: boolean; reason: string }> {
    try {
      const files = await this.hostFiles();
      const host = await this.spawnHost(false);
      const r = await host.request({ t: 'load', iso: 'probe', memoryMb: 8, timeoutMs: 1000, network: false, code: 'var __laminaUser = { default: () => 42 };', filename: 'probe.js', fn: { name: 'probe', version: 0, env: {} } });
      await host.stop();
      if (r.t !== 'ok') return { ok: false, reason: `isolated-vm cannot create an isolate here: ${'message' in r ? r.message : r.t}` };
      const extras = this.isolation.dropPrivileges ? 'per-host uid and network namespace' : 'no uid or network separation (not root)';
      return { ok: true, reason: `V8 isolates (isolated-vm ${files.ivmVersion}) in helper processes (up to ${this.perHost} function(s) each), ${extras}` };
    } catch (err) {
      return { ok: false, reason: (err as Error).message };
    }
  }

  supports(runtime: RuntimeName): boolean {
    return runtime === 'node';
  }

  async create(shape: SandboxShape): Promise<Sandbox> {
    if (this.opts.spareHosts !== false) this.spare(shape.network);
    return new IsolateSandbox(`i${(this.seq++).toString(36)}-${process.pid.toString(36)}`, shape, this);
  }

  /** Running hosts (spares have no functions), for metrics, the density bench and tests. */
  hostInfo(): { pid: number | undefined; isolates: number; functions: string[]; dedicated: boolean }[] {
    return [...this.all].map((h) => {
      const slot = this.slotOf.get(h);
      return { pid: h.pid, isolates: h.size, functions: slot ? [...slot.functions.keys()] : [], dedicated: slot?.dedicated ?? false };
    });
  }

  /** Whether a function was quarantined (it was running when a shared host died). */
  isQuarantined(functionName: string, network: boolean): boolean {
    return this.quarantined.has(functionKey({ functionName, network }));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.all].map((h) => h.stop()));
    await (await this.cgroups)?.close().catch(() => undefined);
  }

  /** A cgroup for one more host, limited to its overhead until isolates join; undefined without cgroups. */
  private async hostCgroup(): Promise<HostCgroup | undefined> {
    this.cgroups ??= (process.getuid?.() === 0 ? openCgroups() : Promise.reject(new Error('not root'))).catch((err: Error) => {
      this.log(`isolate: hosts run without a cgroup (${err.message}); WebAssembly memory is then not bounded`);
      return undefined;
    });
    const manager = await this.cgroups;
    if (!manager) return undefined;
    const overheadBytes = HOST_OVERHEAD_MB * 1024 * 1024;
    const cgroup = await manager.create(`isolate-host-${this.hostSeq++}`, { memoryBytes: overheadBytes, pidsMax: 256, cpuShares: 1024, cpuQuotaCores: 0 });
    return { cgroup, overheadBytes };
  }

  /** HostBroker: the host for one more isolate of this function: its current host, else a shared one with room, else a new one. */
  hostFor(spec: LoadSpec): Promise<HostProcess> {
    const fn = functionKey(spec);
    let slot = this.assigned.get(fn);
    if (!slot || slot.gone) {
      const alone = this.perHost === 1 || this.quarantined.has(fn);
      slot = alone ? undefined : [...this.slots].find((s) => !s.gone && !s.dedicated && s.network === spec.network && s.functions.size < this.perHost);
      slot ??= this.newSlot(spec.network, alone);
      this.assigned.set(fn, slot);
    }
    slot.functions.set(fn, (slot.functions.get(fn) ?? 0) + 1);
    const chosen = slot;
    return chosen.host.then(
      (h) => {
        clearTimeout(h.idleTimer);
        h.idleTimer = undefined;
        return h;
      },
      (err: unknown) => {
        this.unassign(chosen, fn);
        throw err;
      },
    );
  }

  /** HostBroker: an isolate of this function left this host; an empty host is stopped after a while. */
  released(host: HostProcess, spec: LoadSpec): void {
    const slot = this.slotOf.get(host);
    if (slot) this.unassign(slot, functionKey(spec));
    if (host.size > 0 || !host.alive || host.idleTimer) return;
    host.idleTimer = setTimeout(() => {
      host.idleTimer = undefined;
      // Still empty, and no isolate on its way here (a function just assigned to it).
      if (host.size === 0 && !slot?.functions.size) {
        if (slot) this.retire(slot);
        void host.stop();
      }
    }, this.opts.hostIdleMs ?? 30_000);
    host.idleTimer.unref();
  }

  private unassign(slot: HostSlot, fn: string): void {
    const left = (slot.functions.get(fn) ?? 1) - 1;
    if (left > 0) return void slot.functions.set(fn, left);
    slot.functions.delete(fn);
    if (this.assigned.get(fn) === slot) this.assigned.delete(fn);
  }

  /** No more functions join this slot. */
  private retire(slot: HostSlot): void {
    slot.gone = true;
    this.slots.delete(slot);
    for (const fn of slot.functions.keys()) if (this.assigned.get(fn) === slot) this.assigned.delete(fn);
  }

  /** A slot on a spare host when one is ready, else on a new one. */
  private newSlot(network: boolean, dedicated: boolean): HostSlot {
    const spare = this.spares.get(network);
    this.spares.delete(network);
    // A spare that failed or died since is replaced by a fresh start.
    const spared = spare?.then((h) => (h.alive ? h : undefined)).catch(() => undefined) ?? Promise.resolve(undefined);
    const slot: HostSlot = { id: this.slotSeq++, network, dedicated, functions: new Map(), gone: false, host: undefined as unknown as Promise<HostProcess> };
    slot.host = spared.then(async (ready) => {
      const h = ready ?? (await this.spawnHost(network));
      this.slotOf.set(h, slot);
      h.onExited(() => this.hostEnded(slot, h));
      if (!h.alive) this.hostEnded(slot, h);
      return h;
    });
    slot.host.catch(() => this.retire(slot));
    this.slots.add(slot);
    if (this.opts.spareHosts !== false) this.spare(network);
    return slot;
  }

  /** A host is gone: its functions go elsewhere next time; whoever was running in a shared host that died is quarantined. */
  private hostEnded(slot: HostSlot, h: HostProcess): void {
    if (slot.gone && !this.slotOf.has(h)) return;
    this.slotOf.delete(h);
    const death = h.ended;
    if (death && !death.stopped && this.perHost > 1 && !slot.dedicated) {
      for (const fn of death.suspects) {
        if (this.quarantined.has(fn)) continue;
        this.quarantined.add(fn);
        this.log(`isolate: function ${fn} was running when its shared host died (${death.kind}); it now runs in a host of its own`);
      }
    }
    this.retire(slot);
  }

  private spare(network: boolean): void {
    if (this.closed || this.spares.has(network)) return;
    const p = this.spawnHost(network);
    p.catch((err: Error) => {
      this.log(`isolate: could not pre-start a host: ${err.message}`);
      if (this.spares.get(network) === p) this.spares.delete(network);
    });
    this.spares.set(network, p);
  }

  private hostFiles(): Promise<HostFiles> {
    this.files ??= buildHostFiles(path.join(this.runDir.root, 'isolate-host'));
    return this.files;
  }

  private async spawnHost(network: boolean): Promise<HostProcess> {
    if (this.closed) throw new Error('the isolate backend is closed');
    const files = await this.hostFiles();
    // --no-node-snapshot: isolated-vm's README requires it on Node 20+; only hosts need it.
    const nodeArgs = ['--no-node-snapshot', '--experimental-permission', `--allow-fs-read=${files.dir}/`, '--allow-addons', '--disable-warning=ExperimentalWarning', '--disable-warning=SecurityWarning', files.program, network ? 'net' : 'nonet'];
    let command = process.execPath;
    let args = nodeArgs;
    let uid: number | undefined;
    if (this.isolation.dropPrivileges) {
      // Unique host-wide, so no other sandbox, of this server or another, shares it (sandbox/uids.ts).
      uid = await sharedUids().acquire();
      const setpriv = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--pdeathsig=KILL', '--', process.execPath, ...nodeArgs];
      const netns = !network && this.isolation.isolateNetwork;
      command = netns ? 'unshare' : 'setpriv';
      args = netns ? ['--net', '--', ...setpriv] : setpriv.slice(1);
    }
    let cg: HostCgroup | undefined;
    let host: HostProcess;
    try {
      cg = await this.hostCgroup();
      if (cg) {
        args = ['-c', JOIN_CGROUP, 'lamina-isolate-host', ...cg.cgroup.procsFiles, '--', command, ...args];
        command = '/bin/sh';
      }
      host = await HostProcess.start(command, args, files.dir, cg);
    } catch (err) {
      await cg?.cgroup.remove().catch(() => undefined);
      if (uid !== undefined) sharedUids().release(uid);
      throw err;
    }
    this.all.add(host);
    host.onExited(() => {
      this.all.delete(host);
      if (uid !== undefined) sharedUids().release(uid);
    });
    if (this.closed) {
      await host.stop();
      throw new Error('the isolate backend is closed');
    }
    return host;
  }
}
