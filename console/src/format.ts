// Small display helpers.

export const ms = (n: number | null | undefined): string => (n === null || n === undefined ? '-' : n < 10 ? `${n.toFixed(2)} ms` : `${n.toFixed(0)} ms`);

export const time = (iso: string): string => new Date(iso).toLocaleTimeString();

export const dateTime = (iso: string): string => new Date(iso).toLocaleString();

export const money = (n: number): string => `$${n.toFixed(n > 0 && n < 0.01 ? 8 : 4)}`;

/** The `<type>: <message>` of the ERROR line the worker appends to a failed call's logs. */
export function errorOf(logs: string | undefined): string | undefined {
  if (!logs) return undefined;
  for (const line of logs.split('\n').reverse()) {
    const parts = line.split('\t');
    if (parts[2] === 'ERROR') return parts.slice(3).join('\t');
  }
  return undefined;
}
