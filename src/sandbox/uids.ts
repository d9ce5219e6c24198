// Host uids for sandboxes, unique across every Lamina process on the host.
// A sandbox's uid is what keeps it from signalling (or ptracing, or reading the
// /proc of) another sandbox, so two servers on one host (the cluster's
// Procfile) must never hand out the same uid at the same time.
//
// The uid range is cut into blocks; a process owns a block while it holds an
// exclusive flock(2) on /run/lamina/uids/<block>.lock. Node has no flock, so a
// small `flock` helper (util-linux, like setpriv and unshare) holds it for us:
// it takes the lock and then waits on a pipe from this process. When this
// process exits, however it dies (SIGKILL included), the pipe closes, the
// helper exits and the kernel drops the lock: a dead holder's block is
// reclaimed by the next process that asks, which first kills whatever still
// runs under the block's uids (sandboxes of the dead server that outlived it).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

/** First sandbox uid: far above ordinary users and systemd's dynamic ranges, and apart from the fixed ranges older Lamina versions used (200000..599999). */
export const UID_FIRST = 1_000_000;
export const BLOCK_SIZE = 1024;
/** Blocks in the range: 1000000..(1000000 + 256 * 1024), enough for 256 servers on one host. */
const BLOCKS = 256;
const CONFLICT = 75;

export interface UidAllocatorOptions {
  /** Where the block locks live (default /run/lamina/uids, or LAMINA_UID_LOCK_DIR). */
  lockDir?: string;
  log?: (msg: string) => void;
  /** The block to try first (tests); default: a random one, so servers starting together rarely contend. */
  firstBlock?: number;
}

interface Block {
  first: number;
  helper?: ChildProcess;
}

export class UidAllocator {
  private readonly lockDir: string;
  private readonly log: (msg: string) => void;
  private readonly firstBlock: number | undefined;
  private blocks: Block[] = [];
  private readonly inUse = new Set<number>();
  private cursor = 0;
  private pending?: Promise<void>;
  /** Set when locks cannot be taken (not root, no flock): uids are then unique within this process only. */
  private localOnly = false;

  constructor(opts: UidAllocatorOptions = {}) {
    this.lockDir = opts.lockDir ?? process.env.LAMINA_UID_LOCK_DIR ?? '/run/lamina/uids';
    this.log = opts.log ?? (() => undefined);
    this.firstBlock = opts.firstBlock;
  }

  /** A uid no other live sandbox on the host has; give it back with release(). */
  async acquire(): Promise<number> {
    for (;;) {
      const uid = this.pick();
      if (uid !== undefined) {
        this.inUse.add(uid);
        return uid;
      }
      // Every owned uid is taken: one more block (one at a time, so concurrent callers share it).
      await (this.pending ??= this.addBlock().finally(() => (this.pending = undefined)));
    }
  }

  release(uid: number): void {
    this.inUse.delete(uid);
  }

  /** The blocks this allocator holds (for tests and diagnostics). */
  heldBlocks(): number[] {
    return this.blocks.map((b) => (b.first - UID_FIRST) / BLOCK_SIZE);
  }

  /** Gives every block back (the helpers exit and their locks drop). */
  close(): void {
    for (const b of this.blocks) b.helper?.stdin?.end();
    this.blocks = [];
    this.inUse.clear();
  }

  /** The next free uid after the last one handed out, so a just-released uid is reused last. */
  private pick(): number | undefined {
    const total = this.blocks.length * BLOCK_SIZE;
    for (let i = 0; i < total; i++) {
      const k = (this.cursor + i) % total;
      const uid = this.blocks[Math.floor(k / BLOCK_SIZE)]!.first + (k % BLOCK_SIZE);
      if (!this.inUse.has(uid)) {
        this.cursor = (k + 1) % total;
        return uid;
      }
    }
    return undefined;
  }

  private async addBlock(): Promise<void> {
    const held = new Set(this.heldBlocks());
    if (!this.localOnly) {
      try {
        mkdirSync(this.lockDir, { recursive: true, mode: 0o700 });
      } catch (err) {
        this.fallBack(`cannot create ${this.lockDir}: ${(err as Error).message}`);
      }
    }
    const start = this.firstBlock ?? Math.floor(Math.random() * BLOCKS);
    for (let i = 0; i < BLOCKS; i++) {
      const index = (start + i) % BLOCKS;
      if (held.has(index)) continue;
      const first = UID_FIRST + index * BLOCK_SIZE;
      if (this.localOnly) {
        this.blocks.push({ first });
        return;
      }
      const helper = await this.lock(index);
      if (helper === 'busy') continue;
      if (helper === 'unavailable') {
        this.blocks.push({ first });
        return;
      }
      killLeftovers(first, first + BLOCK_SIZE);
      this.blocks.push({ first, helper });
      return;
    }
    throw new Error(`no free block of sandbox uids: all ${BLOCKS} are held by other Lamina processes on this host`);
  }

  private fallBack(why: string): void {
    if (this.localOnly) return;
    this.localOnly = true;
    this.log(`sandbox uids are unique within this process only (${why})`);
  }

  /** Takes block `index`'s lock through a helper; 'busy' when another live process holds it. */
  private lock(index: number): Promise<ChildProcess | 'busy' | 'unavailable'> {
    return new Promise((resolve) => {
      const file = `${this.lockDir}/${index}.lock`;
      // The helper prints once it holds the lock, then waits for EOF on stdin (our death or close()).
      const helper = spawn('flock', ['--exclusive', '--nonblock', '--conflict-exit-code', String(CONFLICT), file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      let settled = false;
      const done = (r: ChildProcess | 'busy' | 'unavailable') => {
        if (settled) return;
        settled = true;
        resolve(r);
      };
      helper.once('error', (err) => {
        this.fallBack(`flock could not run: ${err.message}`);
        done('unavailable');
      });
      helper.stdout!.once('data', () => {
        helper.stdout!.destroy();
        // Neither the helper nor its pipe may keep the server's event loop alive.
        helper.unref();
        (helper.stdin as Socket | null)?.unref?.();
        helper.once('exit', () => this.log(`the lock helper of uid block ${index} exited; its uids stay in use by this process`));
        done(helper);
      });
      helper.once('exit', (code) => {
        if (settled) return;
        if (code === CONFLICT) return done('busy');
        this.fallBack(`flock exited with ${code}`);
        done('unavailable');
      });
    });
  }
}

/** Kills processes still running under uids [from, to): the sandboxes of a server that died holding them. */
function killLeftovers(from: number, to: number): void {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      const m = /^Uid:\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (!m) continue;
      const real = Number(m[1]);
      const effective = Number(m[2]);
      if ((real >= from && real < to) || (effective >= from && effective < to)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone meanwhile, or not ours to see
    }
  }
}

let shared: UidAllocator | undefined;

/** The allocator every tier and the package installer of this process share. */
export function sharedUids(log?: (msg: string) => void): UidAllocator {
  return (shared ??= new UidAllocator({ log }));
}
