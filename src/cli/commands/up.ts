// `lamina up`: a one-node server (gateway and worker in one process).
import type { Command } from 'commander';
import path from 'node:path';
import { baseConfig, defaultDataDir, validateConfig, type ServerConfig } from '../../config.js';
import { DataDirLockedError } from '../../util/data-dir-lock.js';
import { startServer } from '../../server.js';
import { CliError } from '../client.js';
import { int, runUntilSignal } from '../run.js';

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('start a one-node Lamina server (gateway and worker in one process)')
    .option('--port <n>', 'port to listen on; 0 picks a free one', int('--port'))
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--data-dir <dir>', 'where functions, records and the token live (default: LAMINA_DATA_DIR or ~/.lamina)')
    .option('--sandbox <tier>', 'sandbox tier: auto, container, process or isolate')
    .option('--deploy <dir...>', 'deploy these function directories at start')
    .option('--pool-size <n>', 'pre-started runtimes kept per shape', int('--pool-size'))
    .option('--keep-alive <ms>', 'idle time before an instance is stopped', int('--keep-alive'))
    .option('--max-queue <n>', 'calls that may wait per function before 429', int('--max-queue'))
    .option('--billing-granularity <ms>', 'billing rounds durations up to this (default 100)', int('--billing-granularity'))
    .option('--memory-budget <mb>', 'memory all instances may reserve (default: 75% of RAM)', int('--memory-budget'))
    .option('--worker-id <id>', 'this worker\'s id (default: host name)')
    .action(async (o: Record<string, unknown>) => {
      const config: ServerConfig = baseConfig();
      if (o.port !== undefined) config.port = o.port as number;
      if (o.host) config.host = o.host as string;
      if (o.dataDir) config.dataDir = o.dataDir as string;
      if (o.sandbox) config.sandbox = o.sandbox as ServerConfig['sandbox'];
      if (o.deploy) config.deploy = o.deploy as string[];
      if (o.poolSize !== undefined) config.poolSize = o.poolSize as number;
      if (o.keepAlive !== undefined) config.keepAliveMs = o.keepAlive as number;
      if (o.maxQueue !== undefined) config.maxQueue = o.maxQueue as number;
      if (o.billingGranularity !== undefined) config.billingGranularityMs = o.billingGranularity as number;
      if (o.memoryBudget !== undefined) config.memoryBudgetMb = o.memoryBudget as number;
      if (o.workerId) config.workerId = o.workerId as string;
      const token = (program.opts() as { token?: string }).token;
      if (token) config.token = token;
      try {
        validateConfig(config);
      } catch (err) {
        throw new CliError((err as Error).message);
      }

      let server;
      try {
        server = await startServer(config);
      } catch (err) {
        if (err instanceof DataDirLockedError) throw new CliError(err.message);
        throw err;
      }
      console.log(`Lamina listening on ${server.url}`);
      console.log(`  sandbox tier: ${server.tier} (${server.tierReason})`);
      console.log(`  data dir:     ${config.dataDir}`);
      console.log(`  admin token:  ${server.tokenFile ? `in ${server.tokenFile}` : 'from LAMINA_TOKEN/--token'}`);
      if (config.deploy.length) console.log(`  try:          curl ${server.url}/run/<name>`);
      // Clients default to 127.0.0.1:5000 and the default data dir's token: say how to reach anything else.
      if (server.url !== 'http://127.0.0.1:5000' || path.resolve(config.dataDir) !== path.resolve(defaultDataDir())) {
        console.log('  clients:      run this in the shell you use the lamina CLI from:');
        console.log(`    export LAMINA_URL=${server.url} LAMINA_TOKEN=${server.tokenFile ? `$(cat ${shellQuote(server.tokenFile)})` : '<your LAMINA_TOKEN>'}`);
      }

      runUntilSignal('', () => server.close(), 'finishing calls in flight and stopping sandboxes');
    });
}

/** A path as one shell word. */
function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
