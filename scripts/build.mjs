// Builds dist/ with esbuild: the server/CLI (dependencies left external) and each
// in-sandbox runtime as one self-contained file, since a sandbox sees only that file;
// and the web console with Vite (Preact, uPlot) into dist/console.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
const common = { bundle: true, platform: 'node', target: 'node20', format: 'esm', sourcemap: 'linked', logLevel: 'warning' };
await Promise.all([
  build({ ...common, entryPoints: { 'cli/main': 'src/cli/main.ts' }, outdir: 'dist', packages: 'external' }),
  build({ ...common, entryPoints: { 'runtime/node': 'src/runtime/node/runtime.ts' }, outdir: 'dist', sourcemap: false, outExtension: { '.js': '.mjs' } }),
  buildConsole(),
]);

async function buildConsole() {
  let vite;
  try {
    vite = await import('vite');
  } catch {
    // An install without devDependencies (e.g. a production install of a checkout) serves no console.
    console.warn('build: vite is not installed, skipping the console (npm install in the checkout builds it)');
    return;
  }
  await vite.build({ configFile: fileURLToPath(new URL('../console/vite.config.ts', import.meta.url)) });
}
