// Plain aligned text tables: numbers right-aligned, text left-aligned.

export type Cell = string | number | boolean | null | undefined;

/** A number with a sensible number of digits for a table cell. */
export function fmt(v: Cell, digits?: number): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return '-';
  if (digits !== undefined) return v.toFixed(digits);
  const a = Math.abs(v);
  if (Number.isInteger(v) || a >= 1000) return Math.round(v).toString();
  if (a >= 100) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

export function table(headers: string[], rows: Cell[][]): string {
  const text = rows.map((r) => r.map((c) => fmt(c)));
  const numeric = headers.map((_, i) => rows.every((r) => typeof r[i] === 'number' || r[i] === null || r[i] === undefined));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...text.map(line)].join('\n');
}
