// A Python function's requirements.txt, read before anything is installed: the
// requirements normalized (comments, blank lines, order and spacing do not
// split the cache) and the cache key over them, the interpreter (version, ABI,
// platform) and the index settings. Equal inputs share one install.
//
// Only requirement specifiers are accepted: pinned or ranges, extras and
// environment markers. Options that would change where packages come from
// (--index-url, -f, -e, -r of other files, URLs, VCS and local paths) are
// refused: the installer reaches the configured index only.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { LaminaError } from '../errors.js';
import type { PackagePlan } from './plan.js';

export const REQUIREMENTS_FILE = 'requirements.txt';
/** Bumped when the Python install layout or the installer's behaviour changes. */
export const PIP_INSTALL_FORMAT = 1;
const MAX_REQUIREMENTS_BYTES = 64 * 1024;
const MAX_REQUIREMENTS = 200;

/** What the installed files depend on: the interpreter and pip. */
export interface PythonIdentity {
  /** e.g. "cpython-311-linux-x86_64": the ABI and platform of compiled wheels. */
  interpreter: string;
  /** e.g. "3.11.2". */
  version: string;
  pip: string;
}

/** PEP 508 name, optional extras, then the rest (version specifiers and/or a marker). */
const REQ_RE = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[A-Za-z0-9._,\s-]*\])?\s*(.*)$/;
/** Version specifiers (==, >=, ~=, ...), comma-separated, before an optional "; marker". */
const SPEC_RE = /^(?:(?:===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+\s*,?\s*)*$/;

function invalid(message: string): LaminaError {
  return new LaminaError('InvalidFunction', `${REQUIREMENTS_FILE}: ${message}`);
}

/** PEP 503 normalized project name. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** One requirement line checked and put in a canonical form, or an error. */
function parseLine(line: string, n: number): { name: string; text: string } {
  if (line.startsWith('-')) {
    const opt = line.split(/[\s=]/)[0];
    throw invalid(`line ${n}: the option ${opt} is not supported (Lamina installs from its configured index only; list requirements such as "requests==2.31.0")`);
  }
  if (/:\/\/|^\.{0,2}\/|^~|\s@\s|^[A-Za-z0-9._-]+\s*@/.test(line) || /\.(whl|tar\.gz|zip)$/i.test(line)) {
    throw invalid(`line ${n}: ${JSON.stringify(line)} is a URL or a file path; only requirements from the package index are supported`);
  }
  const m = REQ_RE.exec(line);
  if (!m) throw invalid(`line ${n}: ${JSON.stringify(line)} is not a requirement such as "name==1.0" or "name>=1,<2"`);
  const [, name, extras, rest] = m;
  const [specs, ...markerParts] = (rest ?? '').split(';');
  const spec = (specs ?? '').trim().replace(/^\((.*)\)$/, '$1');
  if (!SPEC_RE.test(spec)) throw invalid(`line ${n}: ${JSON.stringify(line)}: "${spec}" is not a version specifier such as "==1.0" or ">=1,<2"`);
  const marker = markerParts.join(';').trim();
  const canonExtras = extras ? `[${extras.slice(1, -1).split(',').map((e) => normalizeName(e.trim())).filter(Boolean).sort().join(',')}]` : '';
  const canonSpec = spec.split(',').map((s) => s.replace(/\s+/g, '')).filter(Boolean).sort().join(',');
  return { name: normalizeName(name!), text: `${normalizeName(name!)}${canonExtras}${canonSpec}${marker ? `; ${marker}` : ''}` };
}

/**
 * Reads requirements.txt and plans the install, or returns undefined when the
 * function has none (or it lists nothing).
 * @param index the index settings (URLs and trusted hosts): part of the key, since another index may serve other files
 */
export async function planPythonPackages(srcDir: string, files: readonly string[], identity: PythonIdentity, index: string): Promise<PackagePlan | undefined> {
  if (!files.includes(REQUIREMENTS_FILE)) return undefined;
  const abs = path.join(srcDir, REQUIREMENTS_FILE);
  const st = await fs.stat(abs);
  if (st.size > MAX_REQUIREMENTS_BYTES) throw invalid(`is ${st.size} bytes; at most ${MAX_REQUIREMENTS_BYTES}`);
  const text = (await fs.readFile(abs, 'utf8')).replace(/^\uFEFF/, '');
  const lines: string[] = [];
  const names: string[] = [];
  // Backslash continuations join lines, as pip reads them.
  const logical = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  logical.forEach((raw, i) => {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) return;
    const r = parseLine(line, i + 1);
    if (!lines.includes(r.text)) lines.push(r.text);
    if (!names.includes(r.name)) names.push(r.name);
  });
  if (lines.length === 0) return undefined;
  if (lines.length > MAX_REQUIREMENTS) throw invalid(`lists ${lines.length} requirements; at most ${MAX_REQUIREMENTS}`);
  lines.sort();
  const requirements = lines.join('\n') + '\n';
  const hash = createHash('sha256');
  const put = (label: string, data: string) => {
    hash.update(`${label}\0${Buffer.byteLength(data)}\0`);
    hash.update(data);
  };
  put('ecosystem', 'pip');
  put('format', String(PIP_INSTALL_FORMAT));
  put('interpreter', `${identity.interpreter} ${identity.version}`);
  put('pip', identity.pip);
  put('index', index);
  put('requirements', requirements);
  return { hash: hash.digest('hex'), packageJson: {}, lockfile: undefined, files: [], dependencies: names, ecosystem: 'pip', requirements };
}
