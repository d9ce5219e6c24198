// The last lines of every call's logs, in AWS Lambda's format, so tools and
// people used to CloudWatch read them as they are: the error of a failed call
// (its stack included) and the REPORT line with its duration and memory.
import type { InvocationRecord } from './types.js';

/** `REPORT RequestId: ...\tDuration: ...\t` exactly as Lambda prints it (a tab after every field); Init Duration only on cold calls. */
export function reportLine(record: InvocationRecord): string {
  const parts = [
    `REPORT RequestId: ${record.requestId}`,
    `Duration: ${record.durationMs.toFixed(2)} ms`,
    `Billed Duration: ${record.billedMs} ms`,
    `Memory Size: ${record.memoryMb} MB`,
    `Max Memory Used: ${Math.max(0, Math.round(record.maxMemoryMb))} MB`,
  ];
  if (record.cold && record.initMs !== null) parts.push(`Init Duration: ${record.initMs.toFixed(2)} ms`);
  return parts.join('\t') + '\t';
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
