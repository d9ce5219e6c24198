// Turns a function's source dir into runnable code in an output dir.
// node: one esbuild bundle, index.mjs, that always exports the handler under
// its manifest name and as default, whatever style the source used.
// python: the .py files as they are.
import fs from 'node:fs/promises';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { LaminaError } from '../errors.js';
import type { Manifest } from './types.js';

export const NODE_CODE_ENTRY = 'index.mjs';

export interface CompiledCode {
  /** File inside the output dir that the runtime loads. */
  codeEntry: string;
}

/**
 * @param srcDir absolute function directory
 * @param files its source files (relative posix paths, already filtered of node_modules and dotfiles)
 * @param outDir an empty directory that receives the code
 */
export async function compileFunction(
  srcDir: string,
  manifest: Manifest,
  files: readonly string[],
  outDir: string,
): Promise<CompiledCode> {
  if (manifest.runtime === 'python') return copyPython(srcDir, manifest, files, outDir);
  return bundleNode(srcDir, manifest, outDir);
}

// CommonJS code inside an ESM bundle calls require() for built-ins; esbuild's
// shim forwards to a `require` in scope. esbuild renames any user top-level
// `require` to avoid this name, so the banner cannot collide. __dirname and
// __filename are deliberately not defined: ESM sources often declare their own.
const BANNER =
  "import { createRequire as __laminaCreateRequire } from 'node:module';\n" +
  'const require = __laminaCreateRequire(import.meta.url);';

/** The bundle's real entry: finds the handler once, at load, and fails loudly if there is none. */
function wrapperSource(entry: string, handler: string): string {
  const exportAs = handler === 'default' ? 'fn as default' : `fn as default, fn as ${handler}`;
  return [
    `import * as mod from ${JSON.stringify(`./${entry}`)};`,
    `const name = ${JSON.stringify(handler)};`,
    // ESM named export; then CommonJS module.exports[name] (esbuild puts module.exports on .default).
    'const cjs = mod.default;',
    'let fn = mod[name];',
    "if (typeof fn !== 'function' && cjs != null && typeof cjs[name] === 'function') fn = cjs[name];",
    // A default-exported function counts only for the default name, so a typo in "handler" is not masked.
    "if (typeof fn !== 'function' && name === 'handler' && typeof cjs === 'function') fn = cjs;",
    "if (typeof fn !== 'function') {",
    `  throw new Error(${JSON.stringify(
      `${entry} does not export a function "${handler}" (use export function ${handler}, export default, or exports.${handler})`,
    )});`,
    '}',
    `export { ${exportAs} };`,
  ].join('\n');
}

/** Refuses to bundle files outside the function directory (e.g. an absolute import of a server file, or the server's own node_modules). */
function confineTo(root: string): esbuild.Plugin {
  return {
    name: 'lamina-confine',
    setup(build) {
      build.onLoad({ filter: /.*/ }, (args) => {
        if (args.namespace !== 'file') return undefined;
        const rel = path.relative(root, args.path);
        if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
          return { errors: [{ text: `imports ${args.path}, which is outside the function directory` }] };
        }
        return undefined;
      });
    },
  };
}

function formatBuildError(err: unknown): string {
  const first = (err as esbuild.BuildFailure).errors?.[0];
  if (!first) return err instanceof Error ? err.message : String(err);
  const loc = first.location;
  // The wrapper is ours; its errors (e.g. an unresolvable entry) are the entry's.
  const where = loc && loc.file !== '<lamina-entry>' ? `${loc.file}:${loc.line}:${loc.column + 1}: ` : '';
  const hint = first.text.startsWith('Could not resolve') && !first.text.includes('"./')
    ? ' (dependencies must be installed in the function directory\'s node_modules)'
    : '';
  return `${where}${first.text}${hint}`;
}

async function bundleNode(srcDir: string, manifest: Manifest, outDir: string): Promise<CompiledCode> {
  const root = await fs.realpath(srcDir); // esbuild reports real paths (symlinks resolved)
  let result: esbuild.BuildResult<{ write: false }>;
  try {
    result = await esbuild.build({
      stdin: {
        contents: wrapperSource(manifest.entry, manifest.handler),
        resolveDir: root,
        sourcefile: '<lamina-entry>',
        loader: 'js',
      },
      absWorkingDir: root,
      // Never written here (write: false); it places the source map's paths relative to the function dir.
      outfile: path.join(root, NODE_CODE_ENTRY),
      write: false,
      bundle: true,
      platform: 'node', // built-ins (fs, node:fs...) stay external
      target: 'node20',
      format: 'esm',
      banner: { js: BANNER },
      // Inline, without sources: stack traces map to the user's file:line when the
      // runtime enables source maps; costs nothing otherwise (a trailing comment).
      sourcemap: 'inline',
      sourcesContent: false,
      logLevel: 'silent',
      plugins: [confineTo(root)],
    });
  } catch (err) {
    throw new LaminaError('InvalidFunction', `compile error: ${formatBuildError(err)}`);
  }
  const out = result.outputFiles[0];
  if (!out) throw new LaminaError('InternalError', 'esbuild produced no output');
  await fs.writeFile(path.join(outDir, NODE_CODE_ENTRY), out.contents);
  return { codeEntry: NODE_CODE_ENTRY };
}

async function copyPython(
  srcDir: string,
  manifest: Manifest,
  files: readonly string[],
  outDir: string,
): Promise<CompiledCode> {
  const entries = files.filter((f) => f.endsWith('.py'));
  for (const rel of entries) {
    const dest = path.join(outDir, rel);
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.copyFile(path.join(srcDir, rel), dest);
  }
  return { codeEntry: manifest.entry }; // python loads its source entry unchanged
}
