// Test helpers: compile a function dir for the isolate tier and drive the
// isolate backend directly (create -> load -> invoke), as the worker does.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { compileFunction } from '../../src/registry/compile.js';
import { listFiles } from '../../src/registry/files.js';
import { parseManifest } from '../../src/registry/manifest.js';
import type { Manifest } from '../../src/registry/types.js';
import { IsolateBackend, type IsolateBackendOptions } from '../../src/sandbox/isolate/backend.js';
import { RunDir } from '../../src/sandbox/run-dir.js';
import type { InvokeOutcome, Sandbox } from '../../src/sandbox/types.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = 'lamina-iso-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Writes a function dir (file map) named `name` and returns its path. */
export function fnDir(name: string, files: Record<string, string>): string {
  const dir = path.join(tempDir(), name);
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

export interface Built {
  manifest: Manifest;
  codeDir: string;
  codeEntry: string;
}

/** parseManifest + compileFunction, as a deploy does (sandbox defaults to isolate here). */
export async function build(files: Record<string, string>, manifest: Record<string, unknown> = {}, name = 'fn'): Promise<Built> {
  const src = fnDir(name, files);
  const list = await listFiles(src, { skipIgnored: true });
  const m = parseManifest({ sandbox: 'isolate', ...manifest }, { dirName: name, files: list });
  const codeDir = tempDir('lamina-iso-code-');
  const { codeEntry } = await compileFunction(src, m, list, codeDir);
  return { manifest: m, codeDir, codeEntry };
}

export class Fixture {
  readonly runDir = new RunDir('lamina-iso-test-');
  readonly backend: IsolateBackend;
  readonly logs: string[] = [];

  constructor(opts: IsolateBackendOptions = {}) {
    this.backend = new IsolateBackend(this.runDir, (m) => this.logs.push(m), { hostIdleMs: 60_000, ...opts });
  }
  private sandboxes: Sandbox[] = [];

  /** create + load, as the worker specializes a generic sandbox. */
  async start(fn: Built): Promise<Sandbox> {
    const m = fn.manifest;
    const sb = await this.backend.create({ runtime: 'node', memoryMb: m.memoryMb, network: m.network });
    this.sandboxes.push(sb);
    await sb.load({ functionName: m.name, functionVersion: 1, codeDir: fn.codeDir, entry: fn.codeEntry, handler: m.handler, env: m.env, memoryMb: m.memoryMb, timeoutMs: m.timeoutMs, network: m.network });
    return sb;
  }

  async close(): Promise<void> {
    await Promise.all(this.sandboxes.map((s) => s.destroy()));
    await this.backend.close();
    this.runDir.remove();
  }
}

let seq = 0;
export function call(sb: Sandbox, event: unknown = {}, timeoutMs = 5000, coldStart = false): Promise<InvokeOutcome> {
  return sb.invoke({ requestId: `req-${++seq}`, event, deadlineMs: Date.now() + timeoutMs, coldStart });
}

/** A function that runs the snippet in event.code (an async function body) and returns its value. */
export const SNIPPET_RUNNER = {
  'index.js': 'export async function handler(event) { return await new Function(`return (async () => { ${event.code} })()`)(); }',
};

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Resident memory of a process in bytes (Linux). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
