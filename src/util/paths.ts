// Where the installed project lives, found from this module's own location so it
// works from dist/ (built) and from src/ (tests run through tsx) alike.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function projectRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'lamina') return (root = dir);
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the lamina package root');
    dir = up;
  }
}

/** The built, self-contained runtime file for a language. */
export function runtimeFile(runtime: string): string {
  const file = runtime === 'python' ? path.join(projectRoot(), 'src', 'runtime', 'python', 'runtime.py') : path.join(projectRoot(), 'dist', 'runtime', `${runtime}.mjs`);
  if (!existsSync(file)) throw new Error(`runtime file ${file} is missing; run \`npm run build\``);
  return file;
}
