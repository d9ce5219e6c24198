// Turns a function's source dir into runnable code in an output dir.
// node: one esbuild bundle, index.mjs, that always exports the handler under
// its manifest name and as default, whatever style the source used.
// node with "sandbox": "isolate": one browser-platform script, isolate.js, that
// leaves the handler on `__laminaUser.default`; Node built-ins are refused.
// "auto" gets both, isolate.js only when the code needs no Node built-ins.
// python: the .py files as they are.
// With installed dependencies (src/packages), node bundles leave them external
// and isolate builds bundle them from the package cache.
import { realpathSync } from 'node:fs';
import fs from 'node:fs/promises';
import { builtinModules } from 'node:module';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { LaminaError } from '../errors.js';
import { confineSourceMaps, confineTo, functionTsconfig } from './confine.js';
import { externalPackages, isolatePackages, preloadSource, PRELOAD_FILE, type PackagesInput } from '../packages/bundle.js';
import type { Manifest } from './types.js';

export const NODE_CODE_ENTRY = 'index.mjs';
export const ISOLATE_CODE_ENTRY = 'isolate.js';

export interface CompiledCode {
  /** File inside the output dir that the runtime loads. */
  codeEntry: string;
}

/**
 * @param srcDir absolute function directory
 * @param files its source files (relative posix paths, already filtered of node_modules and dotfiles)
 * @param outDir an empty directory that receives the code
 * @param packages the function's installed dependencies, when it declares any
 */
export async function compileFunction(
  srcDir: string,
  manifest: Manifest,
  files: readonly string[],
  outDir: string,
  packages?: PackagesInput,
): Promise<CompiledCode> {
  if (manifest.runtime === 'python') return copyPython(srcDir, manifest, files, outDir, packages);
  if (manifest.sandbox === 'isolate') return bundleIsolate(srcDir, manifest, outDir, packages);
  const compiled = await bundleNode(srcDir, manifest, outDir, packages);
  // "auto" means isolate on a worker started with --sandbox isolate: keep an
  // isolate build beside the node one whenever the code allows it.
  if (manifest.sandbox === 'auto') await bundleIsolate(srcDir, manifest, outDir, packages).catch(() => undefined);
  return compiled;
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
    // A fetch handler (Workers style): `export function fetch`, or a default export with a fetch method.
    "const __laminaFetch = typeof mod.fetch === 'function' ? mod : cjs != null && typeof cjs.fetch === 'function' ? cjs : undefined;",
    'let fn = mod[name];',
    "if (typeof fn !== 'function' && cjs != null && typeof cjs[name] === 'function') fn = cjs[name];",
    // A default-exported function counts only for the default name, so a typo in "handler" is not masked.
    "if (typeof fn !== 'function' && name === 'handler' && typeof cjs === 'function') fn = cjs;",
    "if (typeof fn !== 'function' && !__laminaFetch) {",
    `  throw new Error(${JSON.stringify(
      `${entry} does not export a function "${handler}" nor a fetch handler (use export function ${handler}, export default, exports.${handler}, or export default { fetch })`,
    )});`,
    '}',
    `export { ${exportAs}, __laminaFetch };`,
  ].join('\n');
}

function formatBuildError(err: unknown): string {
  const first = (err as esbuild.BuildFailure).errors?.[0];
  if (!first) return err instanceof Error ? err.message : String(err);
  const loc = first.location;
  // The wrapper is ours; its errors (e.g. an unresolvable entry) are the entry's.
  const where = loc && loc.file !== '<lamina-entry>' ? `${loc.file}:${loc.line}:${loc.column + 1}: ` : '';
  const hint = first.text.startsWith('Could not resolve') && !first.text.includes('"./')
    ? ' (declare dependencies in package.json "dependencies", or install them in the function directory\'s node_modules)'
    : '';
  return `${where}${first.text}${hint}`;
}

async function bundleNode(srcDir: string, manifest: Manifest, outDir: string, packages?: PackagesInput): Promise<CompiledCode> {
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
      tsconfigRaw: await functionTsconfig(root), // esbuild never looks for tsconfig files itself
      plugins: [confineTo(root), ...(packages ? [externalPackages(packages)] : []), confineSourceMaps([root])],
      metafile: packages !== undefined,
    });
  } catch (err) {
    throw new LaminaError('InvalidFunction', `compile error: ${formatBuildError(err)}`);
  }
  const out = result.outputFiles[0];
  if (!out) throw new LaminaError('InternalError', 'esbuild produced no output');
  await fs.writeFile(path.join(outDir, NODE_CODE_ENTRY), out.contents);
  // What a pre-started runtime may import ahead of the function (its dependencies).
  if (packages && result.metafile) await fs.writeFile(path.join(outDir, PRELOAD_FILE), preloadSource(result.metafile));
  return { codeEntry: NODE_CODE_ENTRY };
}

const NO_BUILTINS = 'isolates have no Node built-ins; use "sandbox": "process" or "container" for this function';
const NODE_BUILTINS = new Set(builtinModules);
/** Node globals an isolate lacks, looked for in the function's own files (require is resolved by bundling). */
const NODE_GLOBALS = ['process', 'Buffer', '__dirname', '__filename'];
const NODE_ENV_DEFINE = { 'process.env.NODE_ENV': '"production"' };

function loaderFor(file: string): esbuild.Loader {
  const ext = path.extname(file);
  return ext === '.tsx' ? 'tsx' : ext === '.jsx' ? 'jsx' : /^\.[cm]?ts$/.test(ext) ? 'ts' : 'js';
}

/** The first Node global `source` uses unguarded (a `typeof X` check means it copes without), or undefined. */
async function nodeGlobalUsed(source: string, loader: esbuild.Loader): Promise<string | undefined> {
  let code: string;
  try {
    // define replaces only unbound references, so a local named `process` is not flagged.
    const define = { ...NODE_ENV_DEFINE, ...Object.fromEntries(NODE_GLOBALS.map((n) => [n, `__laminaNodeGlobal_${n}`])) };
    ({ code } = await esbuild.transform(source, { loader, define, logLevel: 'silent' }));
  } catch {
    return undefined; // a syntax error: the bundle step reports it with its location
  }
  return NODE_GLOBALS.find((n) => code.includes(`__laminaNodeGlobal_${n}`) && !code.includes(`typeof __laminaNodeGlobal_${n}`));
}

/** Refuses Node built-in imports anywhere, and Node globals in the function's own files. */
function noNode(root: string): esbuild.Plugin {
  return {
    name: 'lamina-no-node',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, async (args) => {
        if ((args.pluginData as { laminaProbe?: boolean } | undefined)?.laminaProbe) return undefined;
        const prefixed = args.path.startsWith('node:');
        if (!prefixed && !NODE_BUILTINS.has(args.path) && !NODE_BUILTINS.has(args.path.split('/')[0]!)) return undefined;
        if (!prefixed) {
          // A package of that name installed with the function (a browser polyfill such as "events") is fine.
          const r = await build.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { laminaProbe: true } });
          if (r.errors.length === 0 && r.path) return { path: r.path, namespace: r.namespace, external: r.external, sideEffects: r.sideEffects };
        }
        return { errors: [{ text: `imports the Node built-in "${args.path}": ${NO_BUILTINS}` }] };
      });
      build.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, async (args) => {
        if (args.namespace !== 'file' || args.path.split(path.sep).includes('node_modules')) return undefined;
        const source = await fs.readFile(args.path, 'utf8');
        const name = await nodeGlobalUsed(source, loaderFor(args.path));
        if (!name) return undefined;
        const lines = source.split('\n');
        const line = lines.findIndex((l) => new RegExp(`\\b${name}\\b`).test(l));
        return {
          errors: [{
            text: `uses the Node global "${name}": isolates have no Node globals (process, Buffer, require, __dirname); use "sandbox": "process" or "container" for this function`,
            location: { file: path.relative(root, args.path).split(path.sep).join('/'), line: line + 1, column: Math.max(0, lines[line]?.search(new RegExp(`\\b${name}\\b`)) ?? 0) },
          }],
        };
      });
    },
  };
}

async function bundleIsolate(srcDir: string, manifest: Manifest, outDir: string, packages?: PackagesInput): Promise<CompiledCode> {
  const root = await fs.realpath(srcDir);
  const deps = packages ? [realpathSync(packages.nodeModules)] : [];
  let result: esbuild.BuildResult<{ write: false }>;
  try {
    result = await esbuild.build({
      stdin: { contents: wrapperSource(manifest.entry, manifest.handler), resolveDir: root, sourcefile: '<lamina-entry>', loader: 'js' },
      absWorkingDir: root,
      outfile: path.join(root, ISOLATE_CODE_ENTRY),
      write: false,
      bundle: true,
      // browser: packages' browser builds, which avoid Node APIs; an IIFE runs as a plain script in a V8 context.
      platform: 'browser',
      target: 'es2022',
      format: 'iife',
      globalName: '__laminaUser',
      define: NODE_ENV_DEFINE,
      logLevel: 'silent',
      nodePaths: deps,
      tsconfigRaw: await functionTsconfig(root),
      plugins: [confineTo(root, deps), ...(packages ? [isolatePackages(packages)] : []), noNode(root), confineSourceMaps([root, ...deps])],
    });
  } catch (err) {
    throw new LaminaError('InvalidFunction', `compile error: ${formatBuildError(err)}`);
  }
  const out = result.outputFiles[0];
  if (!out) throw new LaminaError('InternalError', 'esbuild produced no output');
  await fs.writeFile(path.join(outDir, ISOLATE_CODE_ENTRY), out.contents);
  return { codeEntry: ISOLATE_CODE_ENTRY };
}

/** Beside a Python entry: the modules a pre-started runtime imports ahead of `load` (the requirements' top-level modules). */
export const PYTHON_PRELOAD_FILE = '__lamina_preload__.json';

async function copyPython(
  srcDir: string,
  manifest: Manifest,
  files: readonly string[],
  outDir: string,
  packages?: PackagesInput,
): Promise<CompiledCode> {
  const entries = files.filter((f) => f.endsWith('.py'));
  for (const rel of entries) {
    const dest = path.join(outDir, rel);
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.copyFile(path.join(srcDir, rel), dest);
  }
  if (packages?.modules) {
    const file = path.join(outDir, path.dirname(manifest.entry), PYTHON_PRELOAD_FILE);
    await fs.writeFile(file, JSON.stringify({ modules: packages.modules }) + '\n');
  }
  return { codeEntry: manifest.entry }; // python loads its source entry unchanged
}
