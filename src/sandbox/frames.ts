// Validation of everything a sandbox sends the server. A frame that does not
// have the documented shape is a protocol violation: the sandbox that sent it
// dies, the server never throws. One module, used by the runtime channel
// (process and container tiers) and by the isolate host's channel.
import { z } from 'zod';

export { MAX_FRAME_BYTES, MAX_HOST_FRAME_BYTES, MAX_RESULT_BYTES } from './frame-limits.js';

const errorInfo = z.object({ type: z.string(), message: z.string(), stack: z.string().optional() });
const id = z.string().min(1).max(256);

const runtimeFrame = z.discriminatedUnion('t', [
  z.object({ t: z.literal('ready'), runtime: z.string(), version: z.string(), pid: z.number() }),
  // `kind` (fetch handlers vs plain handlers) is optional: older runtimes omit it.
  z.object({ t: z.literal('loaded'), kind: z.enum(['fetch', 'handler']).optional() }),
  z.object({ t: z.literal('preloaded') }),
  z.object({ t: z.literal('preload_error'), error: errorInfo }),
  z.object({ t: z.literal('load_error'), error: errorInfo }),
  // `more`: the call's waitUntil work goes on; a `settled` frame ends it (HTTP functions).
  z.object({ t: z.literal('result'), id, ok: z.boolean(), value: z.unknown().optional(), error: errorInfo.optional(), ms: z.number().optional(), more: z.boolean().optional() }).refine((f) => f.ok || f.error !== undefined, 'a failed result needs an error'),
  z.object({ t: z.literal('settled'), id, ms: z.number().optional() }),
  z.object({ t: z.literal('log'), id: id.nullable(), stream: z.enum(['stdout', 'stderr']), data: z.string() }),
  z.object({ t: z.literal('fatal'), error: errorInfo }),
]);

const isoStats = z.object({ used: z.number(), peak: z.number(), cpuMs: z.number() });
const failureKind = z.enum(['handler', 'memory', 'timeout', 'crash']);
const q = z.number().int();

const hostFrame = z.discriminatedUnion('t', [
  z.object({ t: z.literal('ready'), pid: z.number() }),
  z.object({ t: z.literal('ok'), q, stats: isoStats.optional(), kind: z.enum(['fetch', 'handler']).optional() }),
  // `type`: "InvalidResponse" (a fetch handler's answer could not be converted); `more`: waitUntil work goes on, `settled` follows.
  z.object({ t: z.literal('fail'), q, kind: failureKind, message: z.string(), stack: z.string().optional(), stats: isoStats.optional(), type: z.enum(['InvalidResponse']).optional(), more: z.boolean().optional() }),
  z.object({ t: z.literal('result'), q, value: z.string(), stats: isoStats, more: z.boolean().optional() }),
  z.object({ t: z.literal('settled'), iso: z.string(), id: z.string() }),
  z.object({ t: z.literal('log'), iso: z.string(), id: z.string().nullable(), data: z.string() }),
  z.object({ t: z.literal('dead'), iso: z.string(), kind: failureKind, message: z.string() }),
]);

/** Thrown for a frame of the wrong shape; its message says what was wrong. */
export class ProtocolViolation extends Error {}

function check<T>(schema: z.ZodType<T>, raw: unknown): T {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue?.path.length ? ` at "${issue.path.join('.')}"` : '';
  const t = raw && typeof raw === 'object' && 't' in raw && typeof raw.t === 'string' ? ` "${raw.t.slice(0, 32)}"` : '';
  throw new ProtocolViolation(`invalid${t} frame${where}: ${issue?.message ?? 'wrong shape'}`);
}

type RuntimeFrameOut = z.infer<typeof runtimeFrame>;
type HostFrameOut = z.infer<typeof hostFrame>;

// Fast paths for the frames every call carries (and `log`, which a sandbox can send by
// the hundred thousand). Each accepts only what its zod schema accepts and returns the
// same object zod would (unknown keys dropped); anything it is not sure of (a wrong
// type, a missing field, an error object) returns undefined and goes to zod, which
// decides and words the refusal. test/unit/frames-fast-path.test.ts checks the
// equivalence on generated frames.

type Raw = Record<string, unknown>;
const isId = (v: unknown): v is string => typeof v === 'string' && v.length >= 1 && v.length <= 256;
const optNum = (v: unknown): boolean => v === undefined || (typeof v === 'number' && Number.isFinite(v));
const optBool = (v: unknown): boolean => v === undefined || typeof v === 'boolean';
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const isStats = (v: unknown): v is { used: number; peak: number; cpuMs: number } => {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Raw;
  return typeof o.used === 'number' && Number.isFinite(o.used) && typeof o.peak === 'number' && Number.isFinite(o.peak) && typeof o.cpuMs === 'number' && Number.isFinite(o.cpuMs);
};
const statsOf = (o: { used: number; peak: number; cpuMs: number }) => ({ used: o.used, peak: o.peak, cpuMs: o.cpuMs });

/** A runtime's hot frames: `log`, a successful `result`, `settled`. */
function quickRuntime(raw: unknown): RuntimeFrameOut | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const f = raw as Raw;
  switch (f.t) {
    case 'log': {
      if (typeof f.data !== 'string' || (f.stream !== 'stdout' && f.stream !== 'stderr')) return undefined;
      const id = f.id;
      if (id !== null && !isId(id)) return undefined;
      return { t: 'log', id, stream: f.stream, data: f.data };
    }
    case 'result': {
      // Failed results (an error object to check) take zod's path.
      if (f.ok !== true || f.error !== undefined || !isId(f.id) || !optNum(f.ms) || !optBool(f.more)) return undefined;
      const out: Raw = { t: 'result', id: f.id, ok: true };
      if ('value' in f) out.value = f.value;
      if (f.ms !== undefined) out.ms = f.ms;
      if (f.more !== undefined) out.more = f.more;
      return out as RuntimeFrameOut;
    }
    case 'settled':
      if (!isId(f.id) || !optNum(f.ms)) return undefined;
      return f.ms === undefined ? { t: 'settled', id: f.id } : { t: 'settled', id: f.id, ms: f.ms as number };
    default:
      return undefined;
  }
}

/** An isolate host's hot frames: `result`, `ok`, `log`. */
function quickHost(raw: unknown): HostFrameOut | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const f = raw as Raw;
  switch (f.t) {
    case 'result':
      if (!isInt(f.q) || typeof f.value !== 'string' || !isStats(f.stats) || !optBool(f.more)) return undefined;
      return f.more === undefined ? { t: 'result', q: f.q, value: f.value, stats: statsOf(f.stats) } : { t: 'result', q: f.q, value: f.value, stats: statsOf(f.stats), more: f.more as boolean };
    case 'ok': {
      if (!isInt(f.q) || (f.stats !== undefined && !isStats(f.stats)) || (f.kind !== undefined && f.kind !== 'fetch' && f.kind !== 'handler')) return undefined;
      const out: Raw = { t: 'ok', q: f.q };
      if (f.stats !== undefined) out.stats = statsOf(f.stats as { used: number; peak: number; cpuMs: number });
      if (f.kind !== undefined) out.kind = f.kind;
      return out as HostFrameOut;
    }
    case 'log':
      if (typeof f.iso !== 'string' || typeof f.data !== 'string' || (f.id !== null && typeof f.id !== 'string')) return undefined;
      return { t: 'log', iso: f.iso, id: f.id, data: f.data };
    default:
      return undefined;
  }
}

/** A runtime's frame (docs/runtime-protocol.md), checked. */
export function parseRuntimeFrame(raw: unknown): RuntimeFrameOut {
  return quickRuntime(raw) ?? check(runtimeFrame, raw);
}

/** An isolate host's frame (src/sandbox/isolate/protocol.ts), checked. */
export function parseHostFrame(raw: unknown): HostFrameOut {
  return quickHost(raw) ?? check(hostFrame, raw);
}

/** The zod-only checks, for tests that compare the fast paths with them. */
export const zodOnly = {
  runtime: (raw: unknown): RuntimeFrameOut => check(runtimeFrame, raw),
  host: (raw: unknown): HostFrameOut => check(hostFrame, raw),
};
