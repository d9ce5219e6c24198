// Releases from the command line: lamina publish, lamina alias, lamina rollback.
import type { Command } from 'commander';
import { Client, CliError, type ClientOptions } from '../client.js';
import { table } from '../table.js';

function client(program: Command): Client {
  return new Client(program.opts() as ClientOptions);
}

const enc = encodeURIComponent;

interface AliasView {
  alias: string;
  version: number | '$LATEST';
  extraVersion: number | null;
  extraWeight: number | null;
  description: string;
}

function aliasLine(name: string, a: AliasView): string {
  const canary = a.extraVersion !== null && a.extraWeight !== null ? ` (${Math.round(a.extraWeight * 1000) / 10}% to version ${a.extraVersion})` : '';
  return `${name}:${a.alias} -> version ${a.version}${canary}`;
}

/** "4=0.1": version 4 takes 10% of the calls. */
function parseCanary(raw: string): { extraVersion: number; extraWeight: number } {
  const m = /^(\d+)=(0(?:\.\d+)?|1(?:\.0+)?|\.\d+)$/.exec(raw.trim());
  if (!m) throw new CliError(`--canary must be VERSION=WEIGHT with a weight from 0 to 1, such as 4=0.1 (got ${raw})`);
  return { extraVersion: Number(m[1]), extraWeight: Number(m[2]) };
}

export function registerVersionCommands(program: Command): void {
  program
    .command('publish')
    .argument('<name>', 'function name')
    .option('-d, --description <text>', 'what this release is')
    .description('publish the current version of a function as a release')
    .action(async (name: string, o: { description?: string }) => {
      const p = await client(program).admin<{ version: number }>('POST', `/api/v1/functions/${enc(name)}/publish`, JSON.stringify({ description: o.description ?? '' }));
      console.log(`published ${name} version ${p.version}`);
    });

  program
    .command('alias')
    .argument('<name>', 'function name')
    .argument('[alias]', 'alias name (without it: list the aliases)')
    .argument('[version]', 'version the alias names (a number or $LATEST)')
    .option('--canary <version=weight>', 'send a weight (0 to 1) of the calls to a second version, e.g. 4=0.1')
    .option('--rm', 'delete the alias')
    .description('list, show, set or delete the aliases of a function (call them as NAME:ALIAS)')
    .action(async (name: string, alias: string | undefined, version: string | undefined, o: { canary?: string; rm?: boolean }) => {
      const c = client(program);
      if (!alias) {
        const r = await c.admin<{ aliases: AliasView[] }>('GET', `/api/v1/functions/${enc(name)}/aliases`);
        if (r.aliases.length === 0) console.log(`${name} has no aliases`);
        else console.log(table(['ALIAS', 'VERSION', 'CANARY', 'DESCRIPTION'], r.aliases.map((a) => [a.alias, String(a.version), a.extraVersion !== null ? `${a.extraVersion} @ ${a.extraWeight}` : '-', a.description])));
        return;
      }
      if (o.rm) {
        await c.admin('DELETE', `/api/v1/functions/${enc(name)}/aliases/${enc(alias)}`);
        console.log(`deleted ${name}:${alias}`);
        return;
      }
      if (version === undefined) {
        const r = await c.admin<{ aliases: AliasView[] }>('GET', `/api/v1/functions/${enc(name)}/aliases`);
        const a = r.aliases.find((x) => x.alias === alias);
        if (!a) throw new CliError(`${name} has no alias ${alias}`);
        console.log(aliasLine(name, a));
        return;
      }
      const canary = o.canary ? parseCanary(o.canary) : { extraVersion: null, extraWeight: null };
      const a = await c.admin<AliasView>('PUT', `/api/v1/functions/${enc(name)}/aliases/${enc(alias)}`, JSON.stringify({ version, ...canary }));
      console.log(aliasLine(name, a));
    });

  program
    .command('rollback')
    .argument('<name>', 'function name')
    .argument('[version]', 'version to bring back (default: the one before the current)')
    .description('make an earlier version current again (as a new version with its code and settings)')
    .action(async (name: string, version: string | undefined) => {
      const r = await client(program).admin<{ version: number; from: number }>('POST', `/api/v1/functions/${enc(name)}/rollback`, JSON.stringify(version === undefined ? {} : { version }));
      console.log(`rolled ${name} back to version ${r.from} (now current as version ${r.version})`);
    });
}
