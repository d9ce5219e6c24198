// `lamina packages` (the package cache: entries, sizes, which versions use
// them), `lamina packages gc`, and the install progress `lamina deploy` shows
// while the server installs a function's dependencies.
import type { Command } from 'commander';
import { Agent, setGlobalDispatcher } from 'undici';
import { Client, type ClientOptions } from '../client.js';
import { table } from '../table.js';

interface EntryView {
  hash: string;
  /** npm or pip. */
  ecosystem?: string;
  sizeBytes: number;
  files: number;
  dependencies: string[];
  packages: number;
  createdAt: string;
  installMs: number;
  usedBy: { name: string; version: number; current: boolean }[];
}

interface InstallView {
  hash: string;
  function: string;
  elapsedMs: number;
  phase: string;
  bytes: number;
  lastLine: string;
}

interface PackagesView {
  installer: { mode: string; registry: string; npm: string; pip?: { indexUrl: string }; limits: { timeoutMs: number; memoryMb: number; maxMb: number } };
  entries: EntryView[];
  totalBytes: number;
  installing: InstallView[];
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

function usedBy(e: EntryView): string {
  if (e.usedBy.length === 0) return '(unused)';
  const byName = new Map<string, string[]>();
  for (const u of e.usedBy) byName.set(u.name, [...(byName.get(u.name) ?? []), `v${u.version}${u.current ? '*' : ''}`]);
  return [...byName].map(([n, vs]) => `${n} ${vs.join(',')}`).join('; ');
}

export function registerPackages(program: Command): void {
  const client = () => new Client(program.opts() as ClientOptions);
  const packages = program
    .command('packages')
    .description("the server's package cache: installed dependency sets, their size, and the versions using them (* = current)")
    .action(async () => {
      const v = await client().admin<PackagesView>('GET', '/api/v1/packages');
      if (v.entries.length === 0) console.log('the package cache is empty');
      else {
        const rows = v.entries.map((e) => [e.hash.slice(0, 12), e.ecosystem ?? 'npm', formatBytes(e.sizeBytes), e.files, e.packages, e.dependencies.slice(0, 4).join(', ') + (e.dependencies.length > 4 ? ', ...' : ''), usedBy(e)] as (string | number)[]);
        console.log(table(['ENTRY', 'KIND', 'SIZE', 'FILES', 'PACKAGES', 'DEPENDENCIES', 'USED BY'], rows));
        console.log(`\n${v.entries.length} entr${v.entries.length === 1 ? 'y' : 'ies'}, ${formatBytes(v.totalBytes)}; unused entries are removed by \`lamina packages gc\``);
      }
      for (const i of v.installing) console.log(`installing for ${i.function}: ${i.phase}, ${Math.round(i.elapsedMs / 1000)} s, ${formatBytes(i.bytes)}`);
      console.log(`installer: ${v.installer.mode}, registry ${v.installer.registry}, npm ${v.installer.npm}${v.installer.pip ? `, pip index ${v.installer.pip.indexUrl}` : ''}; limits ${Math.round(v.installer.limits.timeoutMs / 1000)} s, ${v.installer.limits.memoryMb} MB memory, ${v.installer.limits.maxMb} MB installed`);
    });
  packages
    .command('gc')
    .option('--current-only', 'also remove entries that only superseded versions use')
    .description('remove cache entries that no stored version uses')
    .action(async (o: { currentOnly?: boolean }) => {
      const r = await client().admin<{ removed: { hash: string; sizeBytes: number }[]; freedBytes: number; kept: number }>('POST', '/api/v1/packages/gc', JSON.stringify({ keep: o.currentOnly ? 'current' : 'all' }));
      for (const e of r.removed) console.log(`removed ${e.hash.slice(0, 12)} (${formatBytes(e.sizeBytes)})`);
      console.log(`removed ${r.removed.length} entr${r.removed.length === 1 ? 'y' : 'ies'}, freed ${formatBytes(r.freedBytes)}; kept ${r.kept}`);
    });
}

/**
 * Runs a deploy request; while it waits, shows on stderr what the server's
 * installer is doing for this function (polling GET /packages), so a long
 * install is visibly alive. Deploys may take as long as the install timeout,
 * so the HTTP client's own header timeout is lifted.
 */
export async function withInstallProgress<T>(c: Client, name: string, deploy: () => Promise<T>): Promise<T> {
  setGlobalDispatcher(new Agent({ headersTimeout: 0, bodyTimeout: 0 }));
  const tty = process.stderr.isTTY;
  let shown = false;
  let lastPrinted = 0;
  let stopped = false;
  const started = Date.now();
  const tick = async () => {
    if (stopped) return;
    let line: string | undefined;
    try {
      const v = await c.admin<PackagesView>('GET', '/api/v1/packages');
      const i = v.installing.find((x) => x.function === name);
      if (i) line = `installing dependencies of ${name}: ${i.phase}, ${Math.round(i.elapsedMs / 1000)} s, ${formatBytes(i.bytes)}${i.lastLine ? ` (${i.lastLine.slice(0, 60)})` : ''}`;
    } catch {
      // a server without the packages API, or a transient error: show time only
    }
    line ??= `deploying ${name}: ${Math.round((Date.now() - started) / 1000)} s`;
    if (stopped) return;
    if (tty) {
      process.stderr.write(`\r\x1b[K${line}`);
      shown = true;
    } else if (Date.now() - lastPrinted >= 5000) {
      process.stderr.write(`${line}\n`);
      lastPrinted = Date.now();
    }
  };
  const timer = setInterval(() => void tick(), 1000);
  const first = setTimeout(() => void tick(), 800);
  try {
    return await deploy();
  } finally {
    stopped = true;
    clearInterval(timer);
    clearTimeout(first);
    if (shown) process.stderr.write('\r\x1b[K');
  }
}
