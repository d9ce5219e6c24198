// Lambda's REPORT line, appended to every call's logs when its record is made,
// so `lamina logs`, the records and the AWS API's LogType Tail all end with it.
import type { InvocationRecord } from './types.js';

/** `REPORT RequestId: ...\tDuration: ... ms\tBilled Duration: ... ms\tMemory Size: ... MB\tMax Memory Used: ... MB[\tInit Duration: ... ms]\t\n`, as Lambda prints it. */
export function reportLine(record: InvocationRecord): string {
  const parts = [
    `REPORT RequestId: ${record.requestId}`,
    `Duration: ${record.durationMs.toFixed(2)} ms`,
    `Billed Duration: ${record.billedMs} ms`,
    `Memory Size: ${record.memoryMb} MB`,
    `Max Memory Used: ${Math.max(0, Math.round(record.maxMemoryMb))} MB`,
  ];
  if (record.cold && record.initMs !== null) parts.push(`Init Duration: ${record.initMs.toFixed(2)} ms`);
  return parts.join('\t') + '\t\n';
}
