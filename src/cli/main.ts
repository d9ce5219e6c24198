// The `lamina` command. Every command has --help; errors print one line and exit 1.
import { Command, CommanderError, Option } from 'commander';
import { registerAsyncCommands } from './commands/async-commands.js';
import { registerClientCommands } from './commands/client-commands.js';
import { registerGateway, registerWorker, registerWorkers } from './commands/cluster.js';
import { registerInit } from './commands/init.js';
import { registerKeys } from './commands/keys.js';
import { registerPackages } from './commands/packages.js';
import { registerUp } from './commands/up.js';
import { registerVersionCommands } from './commands/versions.js';
import { CliError } from './client.js';
import { registerDev } from './commands/dev.js';
import { packageVersion } from './version.js';

// `lamina logs X | head -1`: the reader went away, which is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

const program = new Command('lamina')
  .description('Lamina: run functions in isolated sandboxes, warm, scaled out and metered.')
  .version(packageVersion(), '-V, --version', 'print the version')
  .addOption(new Option('--url <url>', 'server URL (default: LAMINA_URL or http://127.0.0.1:5000)'))
  .addOption(new Option('--token <token>', 'admin token (default: LAMINA_TOKEN or the token file of the data dir)'))
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerUp(program);
registerClientCommands(program);
registerAsyncCommands(program);
registerVersionCommands(program);
registerInit(program);
registerPackages(program);
registerKeys(program);
registerGateway(program);
registerWorker(program);
registerWorkers(program);
registerDev(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander has already printed its message (or the help/version text).
    process.exitCode = err.exitCode;
  } else if (err instanceof CliError) {
    console.error(`lamina: ${err.message}`);
    process.exitCode = 1;
  } else {
    console.error(`lamina: ${(err as Error).message ?? String(err)}`);
    process.exitCode = 1;
  }
}
