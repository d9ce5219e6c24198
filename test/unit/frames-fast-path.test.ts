// The hand-written fast paths of frames.ts must accept exactly what the zod
// schemas accept, and return the same objects (unknown keys dropped): every
// frame from a sandbox stays hostile input, whichever path checks it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseHostFrame, parseRuntimeFrame, zodOnly } from '../../src/sandbox/frames.js';

// Field values near the rules' edges: right and wrong types, empty and over-long ids, non-integers.
const anyValue = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.constant(2 ** 60),
  fc.string({ maxLength: 4 }),
  fc.constant(''),
  fc.constant('x'.repeat(256)),
  fc.constant('x'.repeat(257)),
  fc.constantFrom('stdout', 'stderr', 'fetch', 'handler', 'result', 'log'),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.constant({ used: 1, peak: 2, cpuMs: 0.5 }),
  fc.constant({ used: 1, peak: 2, cpuMs: 0.5, extra: true }),
  fc.constant({ used: 1, peak: '2', cpuMs: 0.5 }),
  fc.constant({ type: 'Error', message: 'm' }),
  fc.constant({ type: 'Error', message: 'm', stack: 's', more: 1 }),
  fc.constant({ message: 'm' }),
  fc.jsonValue({ maxDepth: 2 }),
);

const KEYS = ['t', 'id', 'ok', 'value', 'error', 'ms', 'more', 'stream', 'data', 'q', 'stats', 'kind', 'iso', 'extra'] as const;

/** A frame-like object: a hot frame type, each field drawn from `anyValue`, sometimes absent. */
const frameLike = (types: string[]) =>
  fc.record(Object.fromEntries(KEYS.map((k) => [k, k === 't' ? fc.constantFrom(...types) : anyValue])), { requiredKeys: ['t'] }).map((o) => {
    // Absent is not the same as present-and-undefined to a schema: drop undefined fields.
    for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
    return o;
  });

/** Valid frames, so the accepting side of the comparison is well covered too. */
const validRuntime = fc.oneof(
  fc.record({ t: fc.constant('result'), id: fc.string({ minLength: 1, maxLength: 8 }), ok: fc.constant(true), value: fc.jsonValue({ maxDepth: 2 }), ms: fc.double({ noNaN: true, noDefaultInfinity: true }), more: fc.boolean(), extra: fc.string() }, { requiredKeys: ['t', 'id', 'ok'] }),
  fc.record({ t: fc.constant('settled'), id: fc.string({ minLength: 1, maxLength: 8 }), ms: fc.integer() }, { requiredKeys: ['t', 'id'] }),
  fc.record({ t: fc.constant('log'), id: fc.option(fc.string({ minLength: 1, maxLength: 8 })), stream: fc.constantFrom('stdout', 'stderr'), data: fc.string() }),
);
const stats = fc.record({ used: fc.integer(), peak: fc.integer(), cpuMs: fc.double({ noNaN: true, noDefaultInfinity: true }) });
const validHost = fc.oneof(
  fc.record({ t: fc.constant('result'), q: fc.integer(), value: fc.string(), stats, more: fc.boolean() }, { requiredKeys: ['t', 'q', 'value', 'stats'] }),
  fc.record({ t: fc.constant('ok'), q: fc.integer(), stats, kind: fc.constantFrom('fetch', 'handler') }, { requiredKeys: ['t', 'q'] }),
  fc.record({ t: fc.constant('log'), iso: fc.string(), id: fc.option(fc.string()), data: fc.string() }),
);

function same(fast: (raw: unknown) => unknown, slow: (raw: unknown) => unknown, raw: unknown): void {
  let expected: unknown;
  try {
    expected = slow(raw);
  } catch {
    assert.throws(() => fast(raw), `accepted what zod refuses: ${JSON.stringify(raw)}`);
    return;
  }
  assert.deepStrictEqual(fast(raw), expected, `differs from zod on ${JSON.stringify(raw)}`);
}

test('runtime frames: the fast path accepts and returns exactly what zod does', () => {
  fc.assert(
    fc.property(fc.oneof(frameLike(['result', 'settled', 'log']), validRuntime), (raw) => same(parseRuntimeFrame, zodOnly.runtime, raw)),
    { numRuns: 20_000 },
  );
});

test('isolate host frames: the fast path accepts and returns exactly what zod does', () => {
  fc.assert(
    fc.property(fc.oneof(frameLike(['result', 'ok', 'log']), validHost), (raw) => same(parseHostFrame, zodOnly.host, raw)),
    { numRuns: 20_000 },
  );
});

test('edge cases go the same way on both paths', () => {
  const cases: unknown[] = [
    null,
    [],
    [{ t: 'result' }],
    { t: 'result', id: 'a', ok: false },
    { t: 'result', id: 'a', ok: true, ms: 1e400 },
    { t: 'result', id: '', ok: true },
    { t: 'result', id: 'a'.repeat(257), ok: true },
    { t: 'result', id: 'a', ok: 'true' },
    { t: 'result', id: 'a', ok: true, value: undefined },
    { t: 'settled', id: 'a', ms: '3' },
    JSON.parse('{"t":"result","id":"a","ok":true,"__proto__":{"x":1}}'),
  ];
  for (const raw of cases) same(parseRuntimeFrame, zodOnly.runtime, raw);
  const hostCases: unknown[] = [
    { t: 'result', q: 1.5, value: 'x', stats: { used: 1, peak: 1, cpuMs: 1 } },
    { t: 'result', q: 2 ** 60, value: 'x', stats: { used: 1, peak: 1, cpuMs: 1 } },
    { t: 'result', q: 1, value: 'x', stats: [1, 2, 3] },
    { t: 'ok', q: 1, kind: 'other' },
    { t: 'log', iso: 'i', data: 'd' },
  ];
  for (const raw of hostCases) same(parseHostFrame, zodOnly.host, raw);
});
