// What the server prints as it runs: one line per deploy, removal and failed
// call (a successful call prints nothing: at thousands per second the terminal
// would be useless, and the records hold them). On a terminal the lines are
// short and colored; otherwise they are JSON lines for log collectors.
import type { LiveEvent, LiveHub } from './hub.js';

export interface TerminalLogOptions {
  write: (line: string) => void;
  pretty: boolean;
  color?: boolean;
}

const paint = (code: number, s: string, on: boolean) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);

/** The line for an event, or undefined for events not worth a line. */
export function terminalLine(e: LiveEvent, pretty: boolean, color = false): string | undefined {
  if (e.type === 'invocation' && e.record.status === 'Success') return undefined;
  if (!pretty) {
    const time = Date.now();
    if (e.type === 'deployed') return JSON.stringify({ level: 30, time, event: 'deployed', function: e.name, version: e.version, msg: `deployed ${e.name} version ${e.version}` });
    if (e.type === 'removed') return JSON.stringify({ level: 30, time, event: 'removed', function: e.name, msg: `removed ${e.name}` });
    const r = e.record;
    const error = lastErrorLine(r.logs);
    return JSON.stringify({ level: 40, time, event: 'call-failed', function: r.function, version: r.version, requestId: r.requestId, status: r.status, statusCode: r.statusCode, durationMs: r.durationMs, error, msg: `${r.function} ${r.status}` });
  }
  const clock = new Date().toTimeString().slice(0, 8);
  if (e.type === 'deployed') return `${clock} ${paint(32, 'deployed', color)} ${e.name} version ${e.version}`;
  if (e.type === 'removed') return `${clock} ${paint(33, 'removed', color)}  ${e.name}`;
  const r = e.record;
  const error = lastErrorLine(r.logs);
  return `${clock} ${paint(31, r.status, color)} ${r.function} v${r.version} ${r.durationMs.toFixed(1)} ms ${r.requestId}${error ? `: ${error}` : ''}`;
}

/** The "<type>: <message>" of the ERROR line the worker appends to a failed call's logs. */
function lastErrorLine(logs: string): string | undefined {
  const lines = logs.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const parts = lines[i]!.split('\t');
    if (parts[2] === 'ERROR') return parts.slice(3).join('\t').slice(0, 500);
  }
  return undefined;
}

export function attachTerminalLog(hub: LiveHub, opts: TerminalLogOptions): () => void {
  return hub.subscribe((e) => {
    const line = terminalLine(e, opts.pretty, opts.color);
    if (line) opts.write(line + '\n');
  });
}
