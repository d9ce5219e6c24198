// Copies a version's code into a sandbox's own directory. Hard links when the
// file system allows (instant, and the files are read-only anyway), else copies.
import { copyFile, link, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';

export async function placeCodeFiles(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true, mode: 0o755 });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) await placeCodeFiles(src, dst);
    else if (entry.isFile()) await link(src, dst).catch(() => copyFile(src, dst));
  }
}
