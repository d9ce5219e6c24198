// Commands that talk to a running server: deploy, invoke, ls, rm, logs, bill.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { packDirectory } from '../../registry/archive.js';
import type { BillingReport } from '../../metering/store.js';
import type { InvocationRecord } from '../../metering/types.js';
import type { FunctionSummary } from '../../registry/types.js';
import { Client, CliError, errorLine, type ClientOptions } from '../client.js';
import { follow } from '../follow.js';
import { table } from '../table.js';
import { withInstallProgress } from './packages.js';

function client(program: Command): Client {
  return new Client(program.opts() as ClientOptions);
}

/** The name a directory deploys under: the manifest's, else the directory's. */
export function functionName(dir: string): string {
  const manifest = path.join(dir, 'lamina.json');
  if (existsSync(manifest)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(manifest, 'utf8'));
    } catch (err) {
      throw new CliError(`${manifest}: invalid JSON: ${(err as Error).message}`);
    }
    const name = (parsed as { name?: unknown } | null)?.name;
    if (typeof name === 'string' && name) return name;
  }
  return path.basename(path.resolve(dir));
}

/** One call: a header line, then its captured output (ending with the error, if any, and Lambda's REPORT line). */
export function printRecord(r: InvocationRecord): void {
  console.log(`--- ${r.startedAt} ${r.requestId} v${r.version} ${r.status} ${r.durationMs.toFixed(1)} ms (billed ${r.billedMs} ms)${r.cold ? ' cold' : ''}`);
  if (r.logs) process.stdout.write(r.logs.endsWith('\n') ? r.logs : r.logs + '\n');
}

const money = (n: number) => `$${n.toFixed(n > 0 && n < 0.01 ? 8 : 4)}`;

export function registerClientCommands(program: Command): void {
  program
    .command('deploy')
    .argument('<dir>', 'function directory (entry file and optional lamina.json)')
    .description('deploy a function directory as a new version')
    .action(async (dir: string) => {
      if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CliError(`${dir} is not a directory`);
      const name = functionName(dir);
      const archive = await packDirectory(dir);
      const c = client(program);
      const fv = await withInstallProgress(c, name, () =>
        c.admin<{ name: string; version: number; codeHash: string; manifest: { sandbox: string } }>('PUT', `/api/v1/functions/${encodeURIComponent(name)}`, archive, 'application/gzip'),
      );
      console.log(`deployed ${fv.name} version ${fv.version} (code ${fv.codeHash.slice(0, 12)}, sandbox ${fv.manifest.sandbox})`);
    });

  program
    .command('invoke')
    .argument('<name>', 'function name')
    .option('-d, --data <json>', 'the event, as JSON (default {})')
    .option('-X, --method <method>', 'HTTP method', 'POST')
    .option('-v, --verbose', 'print the response headers on stderr')
    .option('-k, --key <key>', 'invoke key for a function with "auth": "token" (default: LAMINA_INVOKE_KEY)')
    .option('--async', 'queue the call (202) and print {"requestId"}; see `lamina queue`')
    .description('call a function and print its JSON result')
    .action(async (name: string, o: { data?: string; method: string; verbose?: boolean; key?: string; async?: boolean }) => {
      if (o.data !== undefined) {
        try {
          JSON.parse(o.data);
        } catch (err) {
          throw new CliError(`--data is not valid JSON: ${(err as Error).message}`);
        }
      }
      const key = o.key ?? process.env.LAMINA_INVOKE_KEY;
      const res = await client(program).request(o.method.toUpperCase(), `/run/${encodeURIComponent(name)}`, {
        body: o.data,
        admin: false,
        ...(key ? { bearer: key } : {}),
        ...(o.async ? { headers: { 'x-lamina-invocation-type': 'Event' } } : {}),
      });
      if (o.verbose) for (const [k, v] of res.headers) if (k.startsWith('x-lamina-')) console.error(`${k}: ${v}`);
      if (res.status >= 400) throw new CliError(errorLine(res));
      console.log(res.text);
    });

  program
    .command('ls')
    .description('list deployed functions')
    .action(async () => {
      const { functions } = await client(program).admin<{ functions: FunctionSummary[] }>('GET', '/api/v1/functions');
      if (functions.length === 0) return console.log('no functions deployed');
      console.log(table(['NAME', 'VERSION', 'RUNTIME', 'MEMORY', 'SANDBOX', 'UPDATED'], functions.map((f) => [f.name, f.version, f.runtime, `${f.memoryMb} MB`, f.sandbox, f.updatedAt])));
    });

  program
    .command('rm')
    .argument('<name>', 'function name')
    .description('delete a function and stop its instances')
    .action(async (name: string) => {
      await client(program).admin('DELETE', `/api/v1/functions/${encodeURIComponent(name)}`);
      console.log(`deleted ${name}`);
    });

  program
    .command('logs')
    .argument('<name>', 'function name')
    .option('-n, --limit <n>', 'how many recent invocations', '20')
    .option('-f, --follow', 'keep printing new calls as they finish (Ctrl-C stops)')
    .description("print a function's recent invocations with their captured output and REPORT lines")
    .action(async (name: string, o: { limit: string; follow?: boolean }) => {
      const c = client(program);
      // Checked first so a typo says so, instead of "no invocations yet".
      await c.admin('GET', `/api/v1/functions/${encodeURIComponent(name)}`);
      const { invocations } = await c.admin<{ invocations: InvocationRecord[] }>('GET', `/api/v1/logs?function=${encodeURIComponent(name)}&limit=${encodeURIComponent(o.limit)}`);
      if (invocations.length === 0 && !o.follow) return console.log(`no invocations of ${name} yet`);
      const seen = new Set<string>();
      for (const r of invocations.reverse()) {
        seen.add(r.requestId);
        printRecord(r);
      }
      if (!o.follow) return;
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      process.once('SIGTERM', () => stop.abort());
      for await (const e of follow({ url: c.url, token: c.token, function: name, signal: stop.signal, onReady: () => console.error(`following ${name} (Ctrl-C to stop)`) })) {
        if (e.event === 'invocation') {
          const r = e.data as InvocationRecord;
          if (!seen.has(r.requestId)) printRecord(r);
        } else if (e.event === 'deployed') console.log(`--- deployed ${name} version ${(e.data as { version: number }).version}`);
        else if (e.event === 'removed') {
          console.log(`--- ${name} was deleted`);
          return;
        }
      }
      if (!stop.signal.aborted) throw new CliError('the server closed the event stream');
    });

  program
    .command('bill')
    .option('--since <iso>', 'from this time (ISO 8601)')
    .option('--until <iso>', 'up to this time (ISO 8601)')
    .description('usage and cost per function')
    .action(async (o: { since?: string; until?: string }) => {
      const q = new URLSearchParams();
      if (o.since) q.set('since', o.since);
      if (o.until) q.set('until', o.until);
      const b = await client(program).admin<BillingReport>('GET', `/api/v1/billing${q.size ? `?${q}` : ''}`);
      const rows = b.functions.map((f) => [f.function, f.invocations, f.errors, f.coldStarts, f.gbSeconds.toFixed(6), money(f.cost.total)] as (string | number)[]);
      rows.push(['TOTAL', b.total.invocations, b.total.errors, b.total.coldStarts, b.total.gbSeconds.toFixed(6), money(b.total.cost.total)]);
      console.log(table(['FUNCTION', 'INVOCATIONS', 'ERRORS', 'COLD STARTS', 'GB-SECONDS', 'COST'], rows));
      console.log(`\nprices: $${b.prices.perGbSecond} per GB-second, $${b.prices.perRequest} per request; billing granularity ${b.granularityMs} ms`);
    });
}
