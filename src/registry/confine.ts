// What esbuild may read while it compiles a function: files inside the
// function directory (and its installed packages), nothing else. esbuild reads
// more than the modules it loads: the tsconfig.json of every directory up to
// the filesystem root (and whatever their `extends` name), and the files named
// by sourceMappingURL comments. A host file read there used to come back in the
// deploy's 400 message (a JSON syntax error quotes it), so each of those reads
// is taken away from esbuild: module loads are checked, the function's own
// tsconfig.json is read here and handed over, and map references that leave
// the directory are neutralised.
import { realpathSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as esbuild from 'esbuild';
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { LaminaError } from '../errors.js';

export function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return !(rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel));
}

/** Whether `p`, symlinks resolved, lies under one of `roots` (which are real paths). */
function reallyInside(roots: readonly string[], p: string): boolean {
  let real: string;
  try {
    real = realpathSync(p);
  } catch {
    return false;
  }
  return roots.some((r) => isInside(r, real));
}

/** Refuses to bundle files outside the function directory (e.g. an absolute import of a server file, or the server's own node_modules); `also` are further allowed roots (the installed packages). */
export function confineTo(root: string, also: string[] = []): esbuild.Plugin {
  return {
    name: 'lamina-confine',
    setup(build) {
      build.onLoad({ filter: /.*/ }, (args) => {
        if (args.namespace !== 'file') return undefined;
        if (!isInside(root, args.path) && !also.some((a) => isInside(a, args.path))) {
          return { errors: [{ text: `imports ${args.path}, which is outside the function directory` }] };
        }
        return undefined;
      });
    },
  };
}

// `//# sourceMappingURL=X`, `//@ ...` and `/*# ... */`: the comment forms esbuild follows.
const MAP_COMMENT = /(\/\/|\/\*)([#@][ \t]*)sourceMappingURL([ \t]*=[ \t]*)([^\s*]+)/g;
const LOADERS: Record<string, esbuild.Loader> = {
  '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.jsx': 'jsx',
  '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.tsx': 'tsx', '.css': 'css',
};

/**
 * Neutralises sourceMappingURL comments that name a file outside `roots`
 * (data: URLs and maps inside the function stay). Must come last among the
 * plugins: it answers the load itself when it rewrites a file.
 */
export function confineSourceMaps(roots: readonly string[]): esbuild.Plugin {
  return {
    name: 'lamina-confine-source-maps',
    setup(build) {
      build.onLoad({ filter: /\.([cm]?[jt]sx?|css)$/ }, async (args) => {
        if (args.namespace !== 'file') return undefined;
        const source = await fs.readFile(args.path, 'utf8');
        if (!source.includes('sourceMappingURL')) return undefined;
        let changed = false;
        const contents = source.replace(MAP_COMMENT, (all, open: string, mark: string, eq: string, url: string) => {
          if (url.startsWith('data:') || mapInside(roots, args.path, url)) return all;
          changed = true;
          return `${open}${mark}lamina-ignored-sourceMappingURL${eq}${url}`;
        });
        if (!changed) return undefined;
        return { contents, loader: LOADERS[path.extname(args.path)] ?? 'js' };
      });
    },
  };
}

function mapInside(roots: readonly string[], file: string, url: string): boolean {
  let target: string;
  try {
    target = url.startsWith('file:') ? fileURLToPath(url) : path.resolve(path.dirname(file), decodeURIComponent(url.split(/[?#]/)[0]!));
  } catch {
    return false;
  }
  return reallyInside(roots, target);
}

/** The fields of a tsconfig.json that matter to esbuild, `extends` resolved inside the function directory only. */
export async function functionTsconfig(root: string): Promise<esbuild.TsconfigRaw> {
  const compilerOptions = await readTsconfig(root, path.join(root, 'tsconfig.json'), []);
  return { compilerOptions: (compilerOptions ?? {}) as esbuild.TsconfigRaw['compilerOptions'] };
}

async function readTsconfig(root: string, file: string, seen: string[]): Promise<Record<string, unknown> | undefined> {
  const rel = path.relative(root, file).split(path.sep).join('/');
  if (!reallyInside([root], file)) {
    if (seen.length === 0) return undefined; // no tsconfig.json: esbuild's defaults
    throw new LaminaError('InvalidFunction', `compile error: ${seen.at(-1)} extends ${JSON.stringify(path.relative(path.dirname(path.join(root, seen.at(-1)!)), file))}, which does not exist or is not in the function directory`);
  }
  if (seen.includes(rel)) throw new LaminaError('InvalidFunction', `compile error: tsconfig.json extends itself (${[...seen, rel].join(' -> ')})`);
  const text = await fs.readFile(file, 'utf8');
  const errors: ParseError[] = [];
  const json = parseJsonc(text, errors, { allowTrailingComma: true }) as unknown;
  if (errors.length > 0 || json === null || typeof json !== 'object' || Array.isArray(json)) {
    const why = errors[0] ? `${printParseErrorCode(errors[0].error)} at offset ${errors[0].offset}` : 'not a JSON object';
    throw new LaminaError('InvalidFunction', `compile error: ${rel}: ${why}`);
  }
  const config = json as { extends?: unknown; compilerOptions?: unknown };
  let merged: Record<string, unknown> = {};
  const bases = config.extends === undefined ? [] : Array.isArray(config.extends) ? config.extends : [config.extends];
  for (const base of bases) {
    if (typeof base !== 'string' || !/^\.\.?\//.test(base)) {
      throw new LaminaError('InvalidFunction', `compile error: ${rel} extends ${JSON.stringify(base)}: only relative paths inside the function directory are supported`);
    }
    const target = path.resolve(path.dirname(file), base.endsWith('.json') ? base : `${base}.json`);
    merged = { ...merged, ...(await readTsconfig(root, target, [...seen, rel])) };
  }
  const own = config.compilerOptions;
  if (own !== undefined && (own === null || typeof own !== 'object' || Array.isArray(own))) {
    throw new LaminaError('InvalidFunction', `compile error: ${rel}: "compilerOptions" must be an object`);
  }
  return { ...merged, ...(own as Record<string, unknown> | undefined) };
}
