// lamina keys create|ls|rm: invoke keys for functions with "auth": "token".
import type { Command } from 'commander';
import { Client, CliError, type ClientOptions } from '../client.js';
import { table } from '../table.js';

interface KeyView {
  id: string;
  functions: string[];
  createdAt: string;
}

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('invoke keys: bearer keys that may call chosen functions and nothing else');
  const client = () => new Client(program.opts() as ClientOptions);

  keys
    .command('create')
    .argument('<functions...>', 'function names the key may call, or "*" for every function')
    .description('create a key (printed once: it is stored hashed)')
    .action(async (functions: string[]) => {
      const k = await client().admin<KeyView & { key: string }>('POST', '/api/v1/keys', JSON.stringify({ functions }), 'application/json');
      console.log(k.key);
      console.error(`key ${k.id} for ${k.functions.join(', ')}: keep it now, it is not shown again`);
    });

  keys
    .command('ls')
    .description('list keys (ids and functions; never the keys)')
    .action(async () => {
      const { keys: list } = await client().admin<{ keys: KeyView[] }>('GET', '/api/v1/keys');
      if (list.length === 0) return console.log('no invoke keys');
      console.log(table(['ID', 'FUNCTIONS', 'CREATED'], list.map((k) => [k.id, k.functions.join(', '), k.createdAt])));
    });

  keys
    .command('rm')
    .argument('<id>', 'key id (from lamina keys ls)')
    .description('revoke a key at once')
    .action(async (id: string) => {
      if (!/^[a-z0-9]+$/.test(id)) throw new CliError(`"${id}" is not a key id (lamina keys ls lists them)`);
      await client().admin('DELETE', `/api/v1/keys/${encodeURIComponent(id)}`);
      console.log(`revoked ${id}`);
    });
}
