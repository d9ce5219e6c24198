// Puts the isolate host's files in one directory at server start: the host
// program and the in-isolate prelude (bundled here with esbuild, from src/,
// the way python's runtime is used from src/) and a copy of isolated-vm's addon,
// so a host running as an unprivileged uid reads only that directory.
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { projectRoot } from '../../util/paths.js';

export interface HostFiles {
  dir: string;
  /** The host program to run with node. */
  program: string;
  ivmVersion: string;
}

/** isolated-vm's compiled addon, or an Error saying why there is none. */
function findAddon(): { file: string; version: string } {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('isolated-vm/package.json');
  } catch {
    throw new Error('isolated-vm is not installed (npm install isolated-vm@^5; it compiles with node-gyp and a C++ toolchain)');
  }
  const version = (require(pkg) as { version: string }).version;
  return { file: path.join(path.dirname(pkg), 'out', 'isolated_vm.node'), version };
}

export async function buildHostFiles(dir: string): Promise<HostFiles> {
  const addon = findAddon();
  const src = path.join(projectRoot(), 'src', 'sandbox', 'isolate');
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const [host, prelude] = await Promise.all([
    esbuild.build({ entryPoints: [path.join(src, 'host.ts')], bundle: true, platform: 'node', target: 'node20', format: 'esm', write: false, logLevel: 'silent' }),
    // Whitespace and syntax only: stack frames inside the prelude keep readable names.
    esbuild.build({ entryPoints: [path.join(src, 'prelude', 'index.ts')], bundle: true, platform: 'neutral', target: 'es2022', format: 'iife', minifyWhitespace: true, minifySyntax: true, write: false, logLevel: 'silent' }),
  ]);
  const program = path.join(dir, 'host.mjs');
  await writeFile(program, host.outputFiles[0]!.contents);
  await writeFile(path.join(dir, 'prelude.js'), prelude.outputFiles[0]!.contents);
  try {
    await copyFile(addon.file, path.join(dir, 'isolated_vm.node'));
  } catch {
    throw new Error(`isolated-vm ${addon.version} is installed but not built (${addon.file} is missing): run \`npm rebuild isolated-vm\` (npm 11 also needs it in package.json "allowScripts")`);
  }
  for (const f of ['host.mjs', 'prelude.js', 'isolated_vm.node']) await chmod(path.join(dir, f), 0o444);
  return { dir, program, ivmVersion: addon.version };
}
