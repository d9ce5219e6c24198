// `lamina init DIR`: scaffold a TypeScript function.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../client.js';
import { isValidFunctionName } from '../../registry/manifest.js';

const HANDLER = `// A Lamina function. Deploy with \`lamina deploy .\`, call with \`lamina invoke NAME --data '{"name":"you"}'\`.

interface Event {
  name?: string;
}

interface Context {
  requestId: string;
  functionName: string;
  functionVersion: number;
  memoryLimitMb: number;
  deadlineMs: number;
  coldStart: boolean;
  getRemainingTimeInMillis(): number;
}

export async function handler(event: Event, context: Context) {
  return { message: \`hello, \${event.name ?? 'world'}\`, requestId: context.requestId };
}
`;

export function registerInit(program: Command): void {
  program
    .command('init')
    .argument('<dir>', 'directory to create (its name becomes the function name)')
    .description('scaffold a TypeScript function')
    .action((dir: string) => {
      const name = path.basename(path.resolve(dir));
      if (!isValidFunctionName(name)) throw new CliError(`"${name}" is not a valid function name (letters, digits, ".", "-" and "_", starting with a letter or digit, up to 63)`);
      if (existsSync(dir) && readdirSync(dir).length > 0) throw new CliError(`${dir} exists and is not empty`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'index.ts'), HANDLER);
      writeFileSync(path.join(dir, 'lamina.json'), JSON.stringify({ name, runtime: 'node', entry: 'index.ts', memoryMb: 128, timeoutMs: 30000 }, null, 2) + '\n');
      console.log(`created ${name} in ${dir}: edit index.ts, then \`lamina deploy ${dir}\``);
    });
}
