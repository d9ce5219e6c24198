// What the long-running commands (up, gateway, worker) share: flag parsing and
// a graceful stop on SIGTERM/SIGINT (a second signal exits at once).
import { CliError } from './client.js';

export function int(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new CliError(`${name} must be a non-negative integer (got "${v}")`);
    return n;
  };
}

/** Runs until SIGTERM or SIGINT, then `close()` and exit 0 (1 if closing fails). */
export function runUntilSignal(what: string, close: () => Promise<void>, stopping: string): void {
  let stopped = false;
  const stop = (signal: string) => {
    if (stopped) {
      console.error(`lamina: ${signal} again, exiting now`);
      process.exit(1);
    }
    stopped = true;
    console.log(`Lamina${what ? ` ${what}` : ""}: ${signal} received, ${stopping}...`);
    close().then(
      () => process.exit(0),
      (err: Error) => {
        console.error(`lamina: shutdown failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
