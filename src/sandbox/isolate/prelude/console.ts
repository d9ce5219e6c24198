// console for the isolate: formats like Node's (printf-style %s %d %i %f %j %o
// %O %c, a compact inspect for objects) and hands each line to `write`.

function inspect(v: unknown, depth: number, seen: Set<object>): string {
  switch (typeof v) {
    case 'string':
      return depth === 0 ? v : `'${v.replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
    case 'bigint':
      return `${v}n`;
    case 'symbol':
      return v.toString();
    case 'function':
      return /^class\b/.test(Function.prototype.toString.call(v)) ? `[class ${v.name || '(anonymous)'}]` : `[Function: ${v.name || '(anonymous)'}]`;
    case 'object':
      break;
    default:
      return String(v);
  }
  if (v === null) return 'null';
  if (v instanceof Error) return v.stack ?? `${v.name}: ${v.message}`;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
  if (v instanceof RegExp) return String(v);
  if (seen.has(v)) return '[Circular]';
  const ctor = (v as { constructor?: { name?: string } }).constructor?.name;
  if (depth > 2) return Array.isArray(v) ? '[Array]' : `[${ctor || 'Object'}]`;
  seen.add(v);
  try {
    const inner = (x: unknown) => inspect(x, depth + 1, seen);
    const wrap = (prefix: string, items: string[], open: string, close: string) => (items.length ? `${prefix}${open} ${items.join(', ')} ${close}` : `${prefix}${open}${close}`);
    if (Array.isArray(v)) return wrap('', v.map(inner), '[', ']');
    if (v instanceof Map) return wrap(`Map(${v.size}) `, [...v].map(([k, x]) => `${inner(k)} => ${inner(x)}`), '{', '}');
    if (v instanceof Set) return wrap(`Set(${v.size}) `, [...v].map(inner), '{', '}');
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return wrap(`${ctor}(${(v as unknown as ArrayLike<unknown>).length}) `, Array.from(v as unknown as ArrayLike<unknown>, inner), '[', ']');
    if (typeof (v as { then?: unknown }).then === 'function') return 'Promise { <pending> }';
    const items = Object.keys(v).map((k) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : `'${k}'`}: ${inner((v as Record<string, unknown>)[k])}`);
    return wrap(ctor && ctor !== 'Object' ? `${ctor} ` : '', items, '{', '}');
  } finally {
    seen.delete(v);
  }
}

export function format(args: unknown[]): string {
  const out: string[] = [];
  let rest = args;
  if (typeof args[0] === 'string' && args[0].includes('%')) {
    let i = 1;
    out.push(
      args[0].replace(/%([sdifjoOc%])/g, (m, f: string) => {
        if (f === '%') return '%';
        if (i >= args.length) return m;
        const a = args[i++];
        switch (f) {
          case 's': return typeof a === 'string' ? a : inspect(a, 1, new Set());
          case 'd': case 'i': { const n = Number(a); return String(f === 'i' ? Math.trunc(n) : n); }
          case 'f': return String(parseFloat(String(a)));
          case 'j': try { return JSON.stringify(a) ?? 'undefined'; } catch { return '[Circular]'; }
          case 'c': return '';
          default: return inspect(a, 1, new Set());
        }
      }),
    );
    rest = args.slice(i);
  }
  for (const a of rest) out.push(inspect(a, 0, new Set()));
  return out.join(' ');
}

export function makeConsole(write: (text: string) => void): Record<string, (...args: unknown[]) => void> {
  const line = (...args: unknown[]) => write(format(args) + '\n');
  const counts = new Map<string, number>();
  const timers = new Map<string, number>();
  return {
    log: line, info: line, debug: line, warn: line, error: line,
    trace: (...args) => write(`Trace: ${format(args)}\n${(new Error().stack ?? '').split('\n').slice(2).join('\n')}\n`),
    dir: (v) => line(v),
    assert: (ok, ...args) => { if (!ok) line('Assertion failed' + (args.length ? `: ${format(args)}` : '')); },
    count: (label = 'default') => { const n = (counts.get(String(label)) ?? 0) + 1; counts.set(String(label), n); line(`${String(label)}: ${n}`); },
    time: (label = 'default') => void timers.set(String(label), Date.now()),
    timeEnd: (label = 'default') => { const t = timers.get(String(label)); if (t !== undefined) line(`${String(label)}: ${Date.now() - t}ms`); timers.delete(String(label)); },
  };
}
