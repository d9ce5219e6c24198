// Builds dist/ with esbuild: the server/CLI (dependencies left external) and each
// in-sandbox runtime as one self-contained file, since a sandbox sees only that file.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
const common = { bundle: true, platform: 'node', target: 'node20', format: 'esm', sourcemap: 'linked', logLevel: 'warning' };
await Promise.all([
  build({ ...common, entryPoints: { 'cli/main': 'src/cli/main.ts' }, outdir: 'dist', packages: 'external' }),
  build({ ...common, entryPoints: { 'runtime/node': 'src/runtime/node/runtime.ts' }, outdir: 'dist', sourcemap: false, outExtension: { '.js': '.mjs' } }),
]);
