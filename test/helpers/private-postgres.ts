// A PostgreSQL server of one test's or benchmark's own: initdb in a fresh temp
// dir, run by the postgres OS user (so root is needed) on a free loopback port.
// The cluster soak restarts it and tests stop it, which must never happen to
// the host's shared cluster (other tests use that one). stop() ends it and
// removes its files, whatever state it is in.
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface PrivatePostgres {
  url: string;
  port: number;
  /** Stops the server (fast shutdown: open connections are cut) and starts it again on the same port. */
  restart(): Promise<{ downMs: number }>;
  /** Stops the server (fast shutdown) and leaves it down until up(). */
  down(): Promise<void>;
  /** Starts a server stopped by down(). */
  up(): Promise<void>;
  /** Stops the server (immediate) and removes its data dir. */
  stop(): Promise<void>;
}

function binDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(path.join(base, v, 'bin', 'pg_ctl'))) : [];
  if (!versions.length) throw new Error('PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): apt-get install postgresql');
  return path.join(base, versions.sort((a, b) => Number(b) - Number(a))[0]!, 'bin');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL binary as the postgres user; throws with its output on failure. */
function asPostgres(bin: string, args: string[]): string {
  const r = spawnSync('runuser', ['-u', 'postgres', '--', bin, ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args[0] ?? ''} failed (${r.status ?? r.error?.message}): ${`${r.stdout ?? ''}${r.stderr ?? ''}`.trim().slice(-600)}`);
  return r.stdout;
}

/** Async variant for the restart (a sync wait would freeze the soak's load generator). */
function asPostgresAsync(bin: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('runuser', ['-u', 'postgres', '--', bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr.on('data', (b: Buffer) => (out += b.toString()));
    c.once('error', reject);
    c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(bin)} ${args[0]} failed (${code}): ${out.trim().slice(-600)}`))));
  });
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = binDir();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-pg-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'log');
  chownSync(dir, Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim()), Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim()));
  const port = await freePort();
  const ctl = path.join(bin, 'pg_ctl');
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  let running = false;
  const stop = async (): Promise<void> => {
    if (running) {
      try {
        asPostgres(ctl, ['stop', '-D', data, '-m', 'immediate', '-w']);
      } catch {
        /* already down */
      }
      running = false;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    asPostgres(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    asPostgres(ctl, ['start', '-D', data, '-l', log, '-o', opts, '-w', '-t', '60']);
    running = true;
    asPostgres(path.join(bin, 'psql'), ['-h', dir, '-p', String(port), '-U', 'postgres', '-X', '-q', '-c', 'CREATE DATABASE lamina']);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/lamina`,
    port,
    async down() {
      await asPostgresAsync(ctl, ['stop', '-D', data, '-m', 'fast', '-w', '-t', '60']);
      running = false;
    },
    async up() {
      await asPostgresAsync(ctl, ['start', '-D', data, '-l', log, '-o', opts, '-w', '-t', '60']);
      running = true;
    },
    async restart() {
      const t0 = performance.now();
      await asPostgresAsync(ctl, ['stop', '-D', data, '-m', 'fast', '-w', '-t', '60']);
      running = false;
      await asPostgresAsync(ctl, ['start', '-D', data, '-l', log, '-o', opts, '-w', '-t', '60']);
      running = true;
      return { downMs: performance.now() - t0 };
    },
    stop,
  };
}
