// Test helpers: temp dirs, function dirs from a file map, hand-made tar archives.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after } from 'node:test';

const created: string[] = [];
after(() => {
  for (const dir of created) {
    makeWritable(dir); // stored code is 0555/0444; non-root cannot delete inside it otherwise
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function makeWritable(dir: string): void {
  try {
    fs.chmodSync(dir, 0o755);
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) makeWritable(path.join(dir, e.name));
  } catch {
    // already gone
  }
}

/** A temp dir removed when the test file ends. */
export function tempDir(prefix = 'lamina-reg-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** Writes files (relative path -> content) under dir and returns dir. */
export function writeTree(dir: string, files: Record<string, string>): string {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
  return dir;
}

/** A function dir named `name` inside a fresh temp dir. */
export function fnDir(name: string, files: Record<string, string>): string {
  const dir = path.join(tempDir(), name);
  fs.mkdirSync(dir);
  return writeTree(dir, files);
}

export interface RawEntry {
  path: string;
  /** tar typeflag: '0' file, '1' hard link, '2' symlink, '3' char device, '5' directory. */
  type?: '0' | '1' | '2' | '3' | '5';
  data?: string | Buffer;
  linkpath?: string;
  /** Declared size, when it must differ from the data (lying headers). */
  size?: number;
}

function header(e: RawEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, off: number, len: number) => h.write(s, off, len, 'utf8');
  const oct = (n: number, off: number, len: number) => put(n.toString(8).padStart(len - 1, '0') + '\0', off, len);
  put(e.path, 0, 100);
  oct(e.type === '5' ? 0o755 : 0o644, 100, 8);
  oct(0, 108, 8);
  oct(0, 116, 8);
  oct(size, 124, 12);
  oct(0, 136, 12);
  h.fill(' ', 148, 156);
  put(e.type ?? '0', 156, 1);
  if (e.linkpath) put(e.linkpath, 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** An uncompressed tar built byte by byte, so tests can craft entries no tool would write. */
export function rawTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    parts.push(header(e, e.size ?? data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function rawTarGz(entries: RawEntry[]): Buffer {
  return zlib.gzipSync(rawTar(entries));
}
