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

/** `log` is the frame a sandbox can send by the hundred thousand: checked by hand (same rules as the schema), the rest by zod. */
function quickLog(raw: unknown): RuntimeFrameOut | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const f = raw as Record<string, unknown>;
  if (f.t !== 'log' || typeof f.data !== 'string' || (f.stream !== 'stdout' && f.stream !== 'stderr')) return undefined;
  const id = f.id;
  if (id !== null && (typeof id !== 'string' || id.length === 0 || id.length > 256)) return undefined;
  return { t: 'log', id, stream: f.stream, data: f.data };
}

/** A runtime's frame (docs/runtime-protocol.md), checked. */
export function parseRuntimeFrame(raw: unknown): RuntimeFrameOut {
  return quickLog(raw) ?? check(runtimeFrame, raw);
}

/** An isolate host's frame (src/sandbox/isolate/protocol.ts), checked. */
export function parseHostFrame(raw: unknown): z.infer<typeof hostFrame> {
  return check(hostFrame, raw);
}
