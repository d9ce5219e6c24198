// `lamina dev DIR`: the edit-save-call loop. Uses the server at --url /
// LAMINA_URL if one answers there, else starts a private one (port 0 unless
// --port, a throwaway data dir); deploys DIR, redeploys it on every save,
// prints every call's logs, and on Ctrl-C stops what it started.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { baseConfig, validateConfig } from '../../config.js';
import type { InvocationRecord } from '../../metering/types.js';
import { packDirectory } from '../../registry/archive.js';
import { startServer, type RunningServer } from '../../server.js';
import { Client, CliError, type ClientOptions } from '../client.js';
import { follow } from '../follow.js';
import { int } from '../run.js';
import { functionName, printRecord } from './client-commands.js';

/** Saves closer together than this are one redeploy (editors write a file in several steps). */
const SETTLE_MS = 80;
const IGNORED = /(^|[/\\])(node_modules|\.git|\.lamina)([/\\]|$)|~$|\.swp$/;

async function isLamina(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { status?: string };
    return res.ok && body.status === 'ok';
  } catch {
    return false;
  }
}

export function registerDev(program: Command): void {
  program
    .command('dev')
    .argument('<dir>', 'function directory')
    .option('--port <n>', 'port of the server dev starts when none answers at --url (default: a free one)', int('--port'))
    .option('--sandbox <tier>', 'sandbox tier of the server dev starts')
    .description('deploy a function, redeploy it on every save and print its calls\' logs (starts a server if none is running)')
    .action(async (dir: string, o: { port?: number; sandbox?: string }) => {
      const root = path.resolve(dir);
      const name = functionName(root);
      await packDirectory(root); // fails early, with a clear line, on a missing or empty directory
      const global = program.opts() as ClientOptions;
      let c = new Client(global);
      let server: RunningServer | undefined;
      let dataDir: string | undefined;
      if (!(await isLamina(c.url))) {
        dataDir = mkdtempSync(path.join(os.tmpdir(), 'lamina-dev-'));
        const config = baseConfig();
        Object.assign(config, { dataDir, port: o.port ?? 0, token: undefined });
        if (o.sandbox) config.sandbox = o.sandbox as typeof config.sandbox;
        try {
          validateConfig(config);
          server = await startServer(config, { terminalLog: false });
        } catch (err) {
          rmSync(dataDir, { recursive: true, force: true });
          throw new CliError((err as Error).message);
        }
        c = new Client({ url: server.url, token: readFileSync(server.tokenFile!, 'utf8').trim() });
        console.log(`started a server at ${server.url} (sandbox ${server.tier}; data dir ${dataDir}; both go when dev stops)`);
      } else {
        console.log(`using the server at ${c.url}`);
      }

      const stop = new AbortController();
      let deploying: Promise<void> = Promise.resolve();
      let again = false;
      const deploy = async (): Promise<void> => {
        const started = Date.now();
        try {
          const archive = await packDirectory(root);
          const fv = await c.admin<{ version: number }>('PUT', `/api/v1/functions/${encodeURIComponent(name)}`, archive, 'application/gzip');
          console.log(`deployed ${name} version ${fv.version} in ${Date.now() - started} ms`);
        } catch (err) {
          // The previous version keeps serving; the next save tries again.
          console.error(`deploy failed: ${(err as Error).message}`);
        }
      };
      const redeploy = () => {
        if (again) return;
        again = true;
        deploying = deploying.then(async () => {
          again = false;
          await deploy();
        });
      };

      await deploy();
      console.log(`${c.url}/run/${name}`);

      // Loaded here: every other command starts without the watcher's modules.
      const { watch } = await import('chokidar');
      const watcher = watch(root, { ignored: (p) => IGNORED.test(path.relative(root, p)), ignoreInitial: true, awaitWriteFinish: false });
      let timer: NodeJS.Timeout | undefined;
      watcher.on('all', () => {
        clearTimeout(timer);
        timer = setTimeout(redeploy, SETTLE_MS);
      });
      watcher.on('error', (err) => console.error(`watching ${root}: ${(err as Error).message}`));

      let stopping: Promise<void> | undefined;
      const cleanup = () =>
        (stopping ??= (async () => {
          stop.abort();
          clearTimeout(timer);
          await watcher.close();
          await deploying;
          if (server) await server.close();
          if (dataDir) rmSync(dataDir, { recursive: true, force: true });
        })());
      const onSignal = () => {
        console.error('stopping');
        cleanup().then(
          () => process.exit(0),
          (err: Error) => {
            console.error(`lamina: cleanup failed: ${err.message}`);
            process.exit(1);
          },
        );
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);

      // Logs until Ctrl-C; a broken stream is re-opened (e.g. the function was deleted and is deployed again).
      while (!stop.signal.aborted) {
        try {
          for await (const e of follow({ url: c.url, token: c.token, function: name, signal: stop.signal })) {
            if (e.event === 'invocation') printRecord(e.data as InvocationRecord);
          }
        } catch (err) {
          if (stop.signal.aborted) break;
          console.error(`logs: ${(err as Error).message}; retrying`);
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
      await cleanup();
    });
}
