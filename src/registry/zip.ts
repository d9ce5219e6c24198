// Zip archives (AWS Lambda's code format): safe extraction with the tarball's
// rules. Entries are read in memory through yauzl and written by us as plain
// files and directories; absolute paths, "..", links and devices are refused,
// and a zip bomb is stopped by the entry count, the total size (declared and
// actually inflated) and the compression ratio.
import fs from 'node:fs/promises';
import path from 'node:path';
import yauzl from 'yauzl';
import { LaminaError } from '../errors.js';
import { checkPath, DEFAULT_ARCHIVE_LIMITS, writeTree, type ArchiveLimits } from './archive.js';

/** Largest inflated/compressed ratio of an entry bigger than RATIO_FLOOR_BYTES (source code is ~3-10). */
export const MAX_ZIP_RATIO = 100;
const RATIO_FLOOR_BYTES = 1024 * 1024;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function bad(message: string): LaminaError {
  return new LaminaError('BadRequest', `invalid zip archive: ${message}`);
}

function open(buf: Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    // decodeStrings off: names are checked by our own rules, which name the entry.
    yauzl.fromBuffer(buf, { lazyEntries: true, validateEntrySizes: true, decodeStrings: false, autoClose: true }, (err, zip) => (err ? reject(err) : resolve(zip)));
  });
}

function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, budget: { left: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err) return reject(err);
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => {
        budget.left -= c.length;
        if (budget.left < 0) {
          stream.destroy();
          reject(new Error('too large'));
        } else chunks.push(c);
      });
      stream.on('error', reject);
      stream.on('end', () => resolve(Buffer.concat(chunks)));
    });
  });
}

/** The file's type from the entry's unix mode, when the archive was made on unix. */
function unixType(entry: yauzl.Entry): number {
  if (entry.versionMadeBy >> 8 !== 3) return 0;
  return (entry.externalFileAttributes >>> 16) & S_IFMT;
}

/** Extracts a .zip into destDir (created if needed); returns destDir, the function root (as on Lambda: no top directory is stripped). */
export async function extractZip(buf: Buffer, destDir: string, limits: ArchiveLimits = {}): Promise<string> {
  const lim = { ...DEFAULT_ARCHIVE_LIMITS, ...limits };
  if (buf.length < 22 || buf.readUInt32LE(0) !== 0x04034b50) throw bad('not zip data (expected a .zip archive)');
  let zip: yauzl.ZipFile;
  try {
    zip = await open(buf);
  } catch (err) {
    throw bad(`corrupt zip data (${(err as Error).message})`);
  }
  if (zip.entryCount > lim.maxFiles) {
    zip.close();
    throw bad(`more than ${lim.maxFiles} entries`);
  }
  const files = new Map<string, Buffer>();
  const dirs = new Set<string>();
  const budget = { left: lim.maxBytes };
  let declared = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (msg: string) => {
        zip.close();
        reject(bad(msg));
      };
      zip.on('error', (err: Error) => reject(bad(`corrupt zip data (${err.message})`)));
      zip.on('end', () => resolve());
      zip.on('entry', (entry: yauzl.Entry) => {
        const raw = Buffer.isBuffer(entry.fileName) ? (entry.fileName as Buffer).toString('utf8') : String(entry.fileName);
        const checked = checkPath(raw);
        if ('error' in checked) return fail(checked.error);
        const type = unixType(entry);
        if (type === S_IFLNK) return fail(`entry ${JSON.stringify(raw)} is a symbolic link; only regular files and directories are allowed`);
        const isDir = raw.endsWith('/') || type === S_IFDIR;
        if (type !== 0 && type !== S_IFREG && type !== S_IFDIR) return fail(`entry ${JSON.stringify(raw)} is not a regular file or directory`);
        if (isDir) {
          if (checked.path) dirs.add(checked.path);
          return zip.readEntry();
        }
        if (!checked.path) return fail('a file entry has an empty path');
        if (files.has(checked.path)) return fail(`duplicate entry ${JSON.stringify(checked.path)}`);
        declared += entry.uncompressedSize;
        if (declared > lim.maxBytes) return fail(`contents exceed ${lim.maxBytes} bytes uncompressed`);
        if (entry.uncompressedSize > RATIO_FLOOR_BYTES && entry.uncompressedSize > MAX_ZIP_RATIO * Math.max(1, entry.compressedSize)) {
          return fail(`entry ${JSON.stringify(raw)} inflates ${Math.round(entry.uncompressedSize / Math.max(1, entry.compressedSize))} times (at most ${MAX_ZIP_RATIO}): refused as a zip bomb`);
        }
        readEntry(zip, entry, budget).then(
          (data) => {
            files.set(checked.path, data);
            zip.readEntry();
          },
          (err: Error) => fail(err.message === 'too large' ? `contents exceed ${lim.maxBytes} bytes uncompressed` : `corrupt entry ${JSON.stringify(raw)} (${err.message})`),
        );
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  if (files.size === 0) throw bad('it holds no files');
  for (const rel of [...files.keys(), ...dirs]) {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (files.has(prefix)) throw bad(`entry ${JSON.stringify(rel)} lies under the file ${JSON.stringify(prefix)}`);
    }
    if (dirs.has(rel) && files.has(rel)) throw bad(`${JSON.stringify(rel)} is both a file and a directory`);
  }
  await writeTree(destDir, dirs, files);
  return destDir;
}
