// Function archives (.tar.gz): safe extraction of uploads, packing for the CLI.
// Extraction never lets tar write: entries are parsed and checked in memory,
// then written by us as plain files (mode 0644) and directories, so no path,
// link, device or permission bit from the archive reaches the filesystem.
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { Parser, create as tarCreate, type ReadEntry } from 'tar';
import { LaminaError } from '../errors.js';
import { listFiles } from './files.js';

export interface ArchiveLimits {
  /** Total uncompressed bytes of file contents. */
  maxBytes?: number;
  /** Number of entries (files and directories). */
  maxFiles?: number;
}

export const DEFAULT_ARCHIVE_LIMITS: Required<ArchiveLimits> = {
  maxBytes: 50 * 1024 * 1024,
  maxFiles: 5000,
};

const gunzip = promisify(zlib.gunzip);

function bad(message: string): LaminaError {
  return new LaminaError('BadRequest', `invalid archive: ${message}`);
}

interface Collected {
  dirs: Set<string>;
  files: Map<string, Buffer>;
}

/** Relative, normalized path of an entry, or an error message (also used for zip archives). */
export function checkPath(raw: string): { path: string } | { error: string } {
  if (raw.includes('\0')) return { error: `entry ${JSON.stringify(raw)} has a NUL byte in its path` };
  if (raw.startsWith('/') || raw.startsWith('\\') || /^[A-Za-z]:/.test(raw)) {
    return { error: `entry ${JSON.stringify(raw)} has an absolute path` };
  }
  const segments = raw.split(/[\\/]+/);
  if (segments.includes('..')) return { error: `entry ${JSON.stringify(raw)} leaves the archive root ("..")` };
  return { path: segments.filter((s) => s !== '' && s !== '.').join('/') };
}

const REFUSED_TYPES: Record<string, string> = {
  SymbolicLink: 'a symbolic link',
  Link: 'a hard link',
  CharacterDevice: 'a device file',
  BlockDevice: 'a device file',
  FIFO: 'a FIFO',
};

function parseTar(tarBuf: Buffer, limits: Required<ArchiveLimits>): Collected {
  const collected: Collected = { dirs: new Set(), files: new Map() };
  let failure: string | undefined;
  let entries = 0;
  let bytes = 0;

  const parser = new Parser({ strict: true });
  parser.on('entry', (entry: ReadEntry) => {
    if (failure) return entry.resume();
    const fail = (msg: string): void => {
      failure = msg;
      entry.resume();
    };
    const checked = checkPath(entry.path);
    if ('error' in checked) return fail(checked.error);
    const rel = checked.path;
    const refused = REFUSED_TYPES[entry.type];
    if (refused) return fail(`entry ${JSON.stringify(entry.path)} is ${refused}; only regular files and directories are allowed`);
    if (++entries > limits.maxFiles) return fail(`more than ${limits.maxFiles} entries`);

    if (entry.type === 'Directory') {
      if (rel) collected.dirs.add(rel);
      return entry.resume();
    }
    if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') {
      return fail(`entry ${JSON.stringify(entry.path)} has unsupported type ${entry.type}`);
    }
    if (!rel) return fail(`a file entry has an empty path`);
    if (collected.files.has(rel)) return fail(`duplicate entry ${JSON.stringify(rel)}`);
    // Check the declared size first, then count real bytes as they arrive.
    if (bytes + (entry.size ?? 0) > limits.maxBytes) return fail(`contents exceed ${limits.maxBytes} bytes uncompressed`);
    const chunks: Buffer[] = [];
    collected.files.set(rel, Buffer.alloc(0));
    entry.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limits.maxBytes) failure ??= `contents exceed ${limits.maxBytes} bytes uncompressed`;
      else chunks.push(chunk);
    });
    entry.on('end', () => collected.files.set(rel, Buffer.concat(chunks)));
  });
  parser.on('error', (err: Error) => {
    failure ??= `corrupt tar data (${err.message.replace(/^TAR_[A-Z_]+: /, '')})`;
  });
  parser.on('warn', (_code: string, message: string | Error) => {
    failure ??= `corrupt tar data (${String(message instanceof Error ? message.message : message)})`;
  });
  // The parser is synchronous over a buffer: every entry and its data arrive inside write/end.
  parser.write(tarBuf);
  parser.end();

  if (failure) throw bad(failure);
  if (collected.files.size === 0) throw bad('it holds no files');
  // A path cannot be both a file and a directory (e.g. "a" and "a/b").
  for (const rel of [...collected.files.keys(), ...collected.dirs]) {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (collected.files.has(prefix)) throw bad(`entry ${JSON.stringify(rel)} lies under the file ${JSON.stringify(prefix)}`);
    }
    if (collected.dirs.has(rel) && collected.files.has(rel)) throw bad(`${JSON.stringify(rel)} is both a file and a directory`);
  }
  return collected;
}

/**
 * Extracts a .tar.gz into destDir (created if needed) and returns the function
 * root: destDir, or its only top-level directory when the archive holds exactly
 * one directory and nothing else beside it.
 */
export async function extractArchive(buf: Buffer, destDir: string, limits: ArchiveLimits = {}): Promise<string> {
  const lim = { ...DEFAULT_ARCHIVE_LIMITS, ...limits };
  if (buf.length < 2 || buf[0] !== 0x1f || buf[1] !== 0x8b) throw bad('not gzip data (expected a .tar.gz)');

  // Bounded inflate: the cap covers the content limit plus tar headers and padding (about 1 KiB per entry).
  let tarBuf: Buffer;
  try {
    tarBuf = await gunzip(buf, { maxOutputLength: lim.maxBytes + lim.maxFiles * 1024 + 1024 * 1024 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw bad(`contents exceed ${lim.maxBytes} bytes uncompressed`);
    }
    throw bad(`corrupt gzip data (${(err as Error).message})`);
  }

  // An empty tar is only end-of-archive zero blocks (at most one 10 KiB record); tar calls it unrecognized.
  if (tarBuf.length <= 10240 && !tarBuf.some((b) => b !== 0)) throw bad('it holds no files');
  const { dirs, files } = parseTar(tarBuf, lim);

  await writeTree(destDir, dirs, files);

  const top = new Set([...files.keys(), ...dirs].map((p) => p.split('/')[0]!));
  if (top.size === 1) {
    const only = [...top][0]!;
    if (!files.has(only)) return path.join(destDir, only);
  }
  return destDir;
}

/**
 * Packs a function directory as a .tar.gz (what `lamina deploy` uploads).
 * Skips node_modules, dotfiles (.git...) and __pycache__; symlinks to files are
 * stored as the files they point at (the server refuses links).
 */
export async function packDirectory(dir: string): Promise<Buffer> {
  const st = await fs.stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new LaminaError('InvalidFunction', `${dir} is not a directory`);
  const files = await listFiles(dir, { skipIgnored: true, followFileLinks: true });
  if (files.length === 0) throw new LaminaError('InvalidFunction', `${dir} holds no files to deploy`);
  // portable + noMtime: the same directory always packs to the same bytes.
  const pack = tarCreate({ gzip: true, cwd: dir, portable: true, noMtime: true, follow: true, noDirRecurse: true }, files);
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Writes checked archive contents (relative paths, already vetted) under destDir: dirs 0755, files 0644, never over an existing file. */
export async function writeTree(destDir: string, dirs: Set<string>, files: Map<string, Buffer | Uint8Array>): Promise<void> {
  await fs.mkdir(destDir, { recursive: true });
  for (const d of [...dirs].sort()) await fs.mkdir(path.join(destDir, d), { recursive: true, mode: 0o755 });
  for (const [rel, data] of files) {
    const dest = path.join(destDir, rel);
    await fs.mkdir(path.dirname(dest), { recursive: true, mode: 0o755 });
    await fs.writeFile(dest, data, { mode: 0o644, flag: 'wx' });
  }
}
