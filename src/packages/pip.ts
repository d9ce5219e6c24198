// pip specifics of the installer (installer.ts runs it in the same sandbox as
// npm): its arguments, what it installed, and one clear sentence when it fails.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { normalizeName } from './pip-plan.js';

/** The installed tree's name in the install dir and in a cache entry. */
export const SITE_PACKAGES = 'site-packages';

export interface PipSettings {
  indexUrl: string;
  extraIndexUrls: string[];
  trustedHosts: string[];
}

/** `python3 <args>`: pip into <work>/site-packages from the configured indexes only. */
export function pipArgs(pip: PipSettings, work: string): string[] {
  return [
    '-I', // no PYTHON* variables, no user site: only the system's pip
    '-m', 'pip', 'install',
    '--target', `${work}/${SITE_PACKAGES}`,
    '--index-url', pip.indexUrl,
    ...pip.extraIndexUrls.flatMap((u) => ['--extra-index-url', u]),
    ...pip.trustedHosts.flatMap((h) => ['--trusted-host', h]),
    '--no-warn-script-location',
    '--progress-bar', 'off',
    '--retries', '1',
    '--timeout', '30',
    '-r', `${work}/requirements.txt`,
  ];
}

export interface Distribution {
  /** Normalized project name. */
  name: string;
  version: string;
  /** Its importable top-level modules. */
  modules: string[];
}

/** The distributions pip put in a site-packages dir, from their .dist-info metadata. */
export function installedDistributions(dir: string): { packages: { name: string; version: string }[]; dists: Distribution[]; modules: string[] } {
  const dists: Distribution[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return { packages: [], dists: [], modules: [] };
  }
  const importable = (m: string): boolean =>
    /^[A-Za-z_][A-Za-z0-9_]*$/.test(m) && m !== '__pycache__' && m !== '_distutils_hack' &&
    (existsSync(path.join(dir, m)) || existsSync(path.join(dir, `${m}.py`)) || names.some((n) => n.startsWith(`${m}.`) && n.endsWith('.so')));
  for (const d of names.filter((n) => n.endsWith('.dist-info'))) {
    const read = (f: string) => {
      try {
        return readFileSync(path.join(dir, d, f), 'utf8');
      } catch {
        return '';
      }
    };
    const meta = read('METADATA');
    const name = /^Name:\s*(.+)$/m.exec(meta)?.[1]?.trim() ?? d.replace(/-[^-]+\.dist-info$/, '');
    const version = /^Version:\s*(.+)$/m.exec(meta)?.[1]?.trim() ?? '?';
    let tops = read('top_level.txt').split('\n').map((l) => l.trim()).filter(Boolean);
    if (tops.length === 0) {
      // No top_level.txt (not built by setuptools): the first path component of every file it installed.
      tops = [...new Set(read('RECORD').split('\n').map((l) => l.split(',')[0]!.split('/')[0]!.replace(/\.py$/, '').replace(/\..*\.so$/, '')))];
    }
    dists.push({ name: normalizeName(name), version, modules: [...new Set(tops.filter(importable))].sort() });
  }
  dists.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { packages: dists.map((d) => ({ name: d.name, version: d.version })), dists, modules: [...new Set(dists.flatMap((d) => d.modules))].sort() };
}

/** pip's last ERROR lines (or its last lines), for messages. */
function pipTail(output: string, max = 1200): string {
  const lines = output.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  const errors = lines.filter((l) => /^ERROR:|error:/.test(l));
  const pick = (errors.length ? errors : lines).slice(-8).join(' | ');
  return pick.length > max ? `...${pick.slice(-max)}` : pick || 'no output';
}

/** One clear sentence naming the requirement when pip can tell which, then pip's own message. */
export function explainPipFailure(output: string, code: number | null, index: string, refused: Set<string>): string {
  let why: string;
  let m: RegExpExecArray | null;
  if ((m = /No matching distribution found for (\S+)/.exec(output))) {
    const versions = /Could not find a version that satisfies the requirement \S+ \(from versions: ([^)]*)\)/.exec(output)?.[1];
    why = `requirement "${m[1]}" cannot be installed: ${versions && versions !== 'none' ? `no version on the index matches (it has ${versions})` : `the index (${index}) has no such project or no file this interpreter can use`}`;
  } else if ((m = /Cannot install (.+?) because these package versions have conflicting dependencies/.exec(output))) {
    why = `the requirements conflict: ${m[1]}`;
  } else if ((m = /Invalid requirement: '?([^'\n]+)'?/.exec(output))) {
    why = `requirement "${m[1]}" is not valid`;
  } else if ((m = /THESE PACKAGES DO NOT MATCH THE HASHES[\s\S]*?\n\s+(\S+)/.exec(output))) {
    why = `a downloaded file does not match its hash (${m[1]})`;
  } else if ((m = /(?:Failed building wheel for|Failed to build) (\S+)/.exec(output)) || (m = /metadata-generation-failed[\s\S]*?× Encountered error while generating package metadata[\s\S]*?╰─> (\S+)/.exec(output))) {
    why = `requirement "${m[1]}" failed to build from source`;
  } else if (refused.size > 0) {
    why = `the install tried to reach ${[...refused].slice(0, 3).join(', ')}, but the installer may reach only the package index (${index}; add hosts with LAMINA_PIP_TRUSTED_HOSTS)`;
  } else if (/Connection refused|Max retries exceeded|NewConnectionError|Temporary failure in name resolution|timed out|ProxyError/.test(output)) {
    why = `cannot reach the package index (${index})`;
  } else {
    why = `pip exited with ${code ?? 'a signal'}`;
  }
  return `installing requirements.txt failed: ${why}; pip said: ${pipTail(output)}`;
}
