// The last lines of every call's logs, in AWS Lambda's format, so tools and
// people used to CloudWatch read them as they are: the error of a failed call
// (its stack included) and the REPORT line with its duration and memory.
import type { InvocationRecord } from './types.js';

/** `REPORT RequestId: ...\tDuration: ...\t` exactly as Lambda prints it (a tab after every field); Init Duration only on cold calls. */
export function reportLine(record: InvocationRecord): string {
  // One template, no array: this runs for every call on the gateway's thread.
  const init = record.cold && record.initMs !== null ? `Init Duration: ${record.initMs.toFixed(2)} ms\t` : '';
  return `REPORT RequestId: ${record.requestId}\tDuration: ${record.durationMs.toFixed(2)} ms\tBilled Duration: ${record.billedMs} ms\tMemory Size: ${record.memoryMb} MB\tMax Memory Used: ${Math.max(0, Math.round(record.maxMemoryMb))} MB\t${init}`;
}

/** Lambda's line for an invocation error: `<time>\t<id>\tERROR\t<type>: <message>` and the stack. */
export function errorLogLine(record: InvocationRecord, error: { type: string; message: string; stack?: string }): string {
  const head = `${record.startedAt}\t${record.requestId}\tERROR\t${error.type}: ${error.message}`;
  // A JavaScript stack starts with "Error: message": print only its frames after our own head line.
  // Other languages' tracebacks (Python's "File ..." lines) are kept whole.
  const lines = error.stack ? error.stack.split('\n') : [];
  const jsFrames = lines.filter((l) => /^\s+at\s/.test(l));
  const frames = jsFrames.length ? jsFrames : lines.filter((l) => l.trim() !== '');
  return [head, ...frames].join('\n');
}

/** The record's logs completed with the error (if any) and the REPORT line, each on its own line. */
export function finishLogs(record: InvocationRecord, error?: { type: string; message: string; stack?: string }): string {
  let logs = record.logs;
  if (logs && !logs.endsWith('\n')) logs += '\n';
  if (error) logs += errorLogLine(record, error) + '\n';
  return logs + reportLine(record) + '\n';
}
