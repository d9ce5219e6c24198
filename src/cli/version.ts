// The version printed by `lamina --version`: package.json's, read at run time
// so a release needs one edit (the bundle sits in dist/cli, the manifest two levels up).
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'lamina' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}
