// A benchmark part that runs a script of its own (which starts and stops its
// own servers) in a child process and turns the Markdown tables it prints into rows.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { PartResult } from './part.js';
import { ROOT } from './server.js';

export function runScriptPart(script: string, args: string[], note: string): PartResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, script), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30 * 60_000 });
  process.stdout.write(r.stdout ?? '');
  if (r.status !== 0) throw new Error(`${script} exited with ${r.status}: ${(r.stderr ?? '').slice(-2000)}`);
  // Markdown table lines: "| a | b | 12.3 |"; the header row is the line before "|---".
  const lines = (r.stdout ?? '').split('\n');
  const rows: Record<string, unknown>[] = [];
  let header: string[] | undefined;
  for (let i = 0; i < lines.length; i++) {
    const cells = lines[i]!.split('|').slice(1, -1).map((c) => c.trim());
    if (cells.length === 0) header = undefined;
    else if (lines[i + 1]?.startsWith('|---')) header = cells;
    else if (header && !cells[0]!.startsWith('---')) rows.push(Object.fromEntries(header.map((h, j) => [h, Number.isFinite(Number(cells[j])) && cells[j] !== '' ? Number(cells[j]) : cells[j]])));
  }
  return { rows, checks: [], notes: [note] };
}
