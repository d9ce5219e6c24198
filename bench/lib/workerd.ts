// Cloudflare's workerd (npm `workerd`, its binary inside the package) as a peer in
// the warm benchmark: the open-source Workers runtime serving the same JSON echo
// that Lamina's `noop` function does (parse the body, answer it as JSON). The
// bench writes the worker and its config into a temp dir; nothing is committed.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Proc } from './server.js';
import { killAtExit, sleep } from './server.js';

const ECHO_WORKER = `export default {
  async fetch(request) {
    const text = await request.text();
    const event = text.trim() === '' ? {} : JSON.parse(text);
    return new Response(JSON.stringify(event ?? null), { headers: { 'content-type': 'application/json; charset=utf-8' } });
  },
};
`;

function config(port: number, compatibilityDate: string): string {
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "echo", worker = .echo) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "echo") ],
);
const echo :Workerd.Worker = (
  modules = [ (name = "worker", esModule = embed "echo.mjs") ],
  compatibilityDate = "${compatibilityDate}",
);
`;
}

/** The workerd binary and the newest compatibility date it supports, or undefined when the package is absent. */
export function workerdBinary(): { bin: string; compatibilityDate: string; version: string } | undefined {
  try {
    const mod = createRequire(import.meta.url)('workerd') as { default: string; compatibilityDate: string; version: string };
    return { bin: mod.default, compatibilityDate: mod.compatibilityDate, version: mod.version };
  } catch {
    return undefined;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { method: 'POST', body: '{"ping":1}' });
    return (await res.text()) === '{"ping":1}';
  } catch {
    return false;
  }
}

/** Starts `workerd serve` with the echo worker on a free loopback port; resolves once it answers. */
export async function startWorkerd(): Promise<Proc> {
  const w = workerdBinary();
  if (!w) throw new Error('the workerd package is not installed (npm install)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-workerd-'));
  const port = await freePort();
  writeFileSync(path.join(dir, 'echo.mjs'), ECHO_WORKER);
  writeFileSync(path.join(dir, 'config.capnp'), config(port, w.compatibilityDate));
  // Same scheduling terms as the other targets: not detached, no new session.
  const child = spawn(w.bin, ['serve', path.join(dir, 'config.capnp')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  // An interrupted bench must not leave workerd serving.
  killAtExit(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-4096)));
  child.stderr!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-4096)));
  const url = `http://127.0.0.1:${port}/`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break;
    if (await answers(url)) return { name: `workerd ${w.version}`, url, pid: child.pid!, stop };
    await sleep(50);
  }
  await stop();
  throw new Error(`workerd did not answer within 10 s: ${out.trim().split('\n').slice(-3).join(' | ')}`);
}
