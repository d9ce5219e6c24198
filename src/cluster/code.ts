// Code distribution in a cluster. The gateway that compiles a deploy stores
// the compiled code dir in the shared database (code_blobs: a .tar.gz by
// content hash) before the version commits; a worker fetches a hash the first
// time it needs it and keeps it at DATA_DIR/code/<hash>, the layout the
// registry uses, so a version's codeDir is the same path on every worker.
// The fetched files are hashed again on arrival (CodeStore.commit): a blob
// whose content does not match its hash is refused.
//
// A version's installed dependencies (src/packages: DATA_DIR/packages/<hash>,
// node_modules with its symlinks) travel the same way, in the same table under
// the key `packages:<hash>`, and land at the same path on the worker.
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { create as tarCreate, extract as tarExtract } from 'tar';
import type { PackageEntry } from '../packages/cache.js';
import { sealTree } from '../packages/tree.js';
import { extractArchive } from '../registry/archive.js';
import { CodeStore, type StoredCode } from '../registry/codestore.js';
import { listFiles, removeTree } from '../registry/files.js';
import type { Db } from '../store/db.js';

const PACKAGES_KEY = (hash: string) => `packages:${hash}`;

/** Entries live under this top-level directory, so extraction always yields exactly one root. */
const PREFIX = 'code';
const LIMITS = { maxBytes: 1024 * 1024 * 1024, maxFiles: 200_000 };

/** A compiled code dir as a .tar.gz (same bytes for the same files). */
export async function packCode(dir: string): Promise<Buffer> {
  const files = await listFiles(dir, { skipIgnored: false });
  const pack = tarCreate({ gzip: true, cwd: dir, portable: true, noMtime: true, prefix: PREFIX, noDirRecurse: true }, files);
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A package-cache entry dir as a .tar.gz, symlinks kept as links. */
async function packTree(dir: string): Promise<Buffer> {
  const pack = tarCreate({ gzip: true, cwd: dir, portable: true, noMtime: true }, ['.']);
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function putBlob(db: Db, key: string, sizeBytes: number, make: () => Promise<Buffer>): Promise<void> {
  const have = await db.kysely.selectFrom('code_blobs').select('hash').where('hash', '=', key).executeTakeFirst();
  if (have) return;
  const archive = await make();
  await db.kysely
    .insertInto('code_blobs')
    .values({ hash: key, archive, size_bytes: sizeBytes, created_at: new Date().toISOString() })
    .onConflict((oc) => oc.column('hash').doNothing())
    .execute();
}

/** The registry's publishCode hook: puts a version's code (and dependencies) in the shared store unless they are there already. */
export function codePublisher(db: Db): (code: StoredCode, packages?: PackageEntry) => Promise<void> {
  return async (code, packages) => {
    if (packages) await putBlob(db, PACKAGES_KEY(packages.hash), packages.sizeBytes, () => packTree(packages.dir));
    await putBlob(db, code.hash, code.sizeBytes, () => packCode(code.dir));
  };
}

/** A worker's on-disk cache of code by hash, filled from the shared store on first use. */
export class CodeCache {
  private readonly store: CodeStore;
  private readonly present = new Set<string>();
  private readonly fetching = new Map<string, Promise<void>>();
  /** Hashes fetched from the database since start (for stats and tests). */
  fetched = 0;

  private readonly dataDir: string;

  constructor(
    private readonly db: Db,
    dataDir: string,
  ) {
    this.dataDir = path.resolve(dataDir);
    this.store = new CodeStore(this.dataDir);
  }

  private ready: Promise<void> | undefined;

  /** Creates DATA_DIR/code and DATA_DIR/tmp (also done on first fetch). */
  init(): Promise<void> {
    return (this.ready ??= this.store.init());
  }

  dirFor(hash: string): string {
    return this.store.dirFor(hash);
  }

  has(hash: string): boolean {
    return this.present.has(hash);
  }

  /** Resolves once DATA_DIR/code/<hash> exists; fetches it at most once at a time. */
  ensure(hash: string): Promise<void> {
    if (this.present.has(hash)) return Promise.resolve();
    let p = this.fetching.get(hash);
    if (!p) {
      p = this.load(hash).finally(() => this.fetching.delete(hash));
      this.fetching.set(hash, p);
    }
    return p;
  }

  /** Resolves once DATA_DIR/packages/<hash> (a complete package-cache entry) exists. */
  ensurePackages(hash: string): Promise<void> {
    const key = PACKAGES_KEY(hash);
    if (this.present.has(key)) return Promise.resolve();
    let p = this.fetching.get(key);
    if (!p) {
      p = this.loadPackages(hash).finally(() => this.fetching.delete(key));
      this.fetching.set(key, p);
    }
    return p;
  }

  private async loadPackages(hash: string): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error(`"${hash}" is not a package-cache hash`);
    const root = path.join(this.dataDir, 'packages');
    const dest = path.join(root, hash);
    const complete = (dir: string) => fs.access(path.join(dir, 'entry.json')).then(() => true, () => false);
    if (!(await complete(dest))) {
      const row = await this.db.kysely.selectFrom('code_blobs').select('archive').where('hash', '=', PACKAGES_KEY(hash)).executeTakeFirst();
      if (!row) throw new Error(`dependencies ${hash.slice(0, 12)} are not in the shared store`);
      await fs.mkdir(path.join(root, 'tmp'), { recursive: true, mode: 0o700 });
      const staging = await fs.mkdtemp(path.join(root, 'tmp', 'fetch-'));
      try {
        // The archive comes from a gateway of this cluster (trusted like the database); tar still refuses
        // absolute paths and "..", and never writes through a symlink.
        await pipeline(Readable.from([Buffer.from(row.archive)]), tarExtract({ cwd: staging, strict: true }));
        if (!(await complete(staging))) throw new Error(`dependencies ${hash.slice(0, 12)} in the shared store are incomplete`);
        await sealTree(staging);
        await fs.chmod(staging, 0o755); // renaming a dir to a new parent updates its "..": needs write permission
        try {
          await fs.rename(staging, dest);
          await fs.chmod(dest, 0o555);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        }
      } finally {
        await fs.chmod(staging, 0o755).catch(() => undefined);
        await removeTree(staging).catch(() => undefined);
      }
      this.fetched++;
    }
    this.present.add(PACKAGES_KEY(hash));
  }

  private async load(hash: string): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error(`"${hash}" is not a code hash`);
    const dir = this.store.dirFor(hash);
    if (await fs.access(dir).then(() => true, () => false)) {
      this.present.add(hash);
      return;
    }
    await this.init();
    const row = await this.db.kysely.selectFrom('code_blobs').select('archive').where('hash', '=', hash).executeTakeFirst();
    if (!row) throw new Error(`code ${hash.slice(0, 12)} is not in the shared store`);
    const staging = await this.store.makeTemp('fetch-');
    try {
      const root = await extractArchive(Buffer.from(row.archive), path.join(staging, 'x'), LIMITS);
      const stored = await this.store.commit(root);
      if (stored.hash !== hash) throw new Error(`code blob ${hash.slice(0, 12)} is corrupt: its files hash to ${stored.hash.slice(0, 12)}`);
    } finally {
      await removeTree(staging);
    }
    this.fetched++;
    this.present.add(hash);
  }
}
