// structuredClone for the types a bare V8 context has: primitives, wrappers,
// Date, RegExp, ArrayBuffer and views, Map, Set, Array, Error and plain objects,
// keeping shared references and cycles. As in browsers, class instances come
// back as plain objects, and functions, symbols, promises and weak collections
// throw a DataCloneError.
import { DOMExceptionPolyfill } from './dom-exception.js';

const ERRORS: Record<string, ErrorConstructor> = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
type View = ArrayBufferView & { constructor: new (b: ArrayBufferLike, o: number, l: number) => ArrayBufferView };

function fail(what: string): never {
  throw new DOMExceptionPolyfill(`${what} could not be cloned.`, 'DataCloneError');
}

export function structuredClone(value: unknown, options?: { transfer?: unknown[] }): unknown {
  if (options?.transfer?.length) throw new DOMExceptionPolyfill('transfer is not supported in isolates', 'DataCloneError');
  const seen = new Map<object, unknown>();
  const clone = (v: unknown): unknown => {
    if (typeof v === 'symbol') fail(String(v));
    if (typeof v === 'function') fail(`${v.toString().slice(0, 60)}`);
    if (v === null || typeof v !== 'object') return v;
    const done = seen.get(v);
    if (done !== undefined) return done;
    const tag = Object.prototype.toString.call(v).slice(8, -1);
    let out: unknown;
    const keep = <T>(x: T): T => (seen.set(v, x), x);
    switch (tag) {
      case 'Boolean': case 'Number': case 'String': case 'BigInt':
        return keep(Object((v as { valueOf(): unknown }).valueOf()));
      case 'Date':
        return keep(new Date((v as Date).getTime()));
      case 'RegExp':
        return keep(new RegExp((v as RegExp).source, (v as RegExp).flags));
      case 'ArrayBuffer':
        return keep((v as ArrayBuffer).slice(0));
      case 'DataView':
      case 'Int8Array': case 'Uint8Array': case 'Uint8ClampedArray': case 'Int16Array': case 'Uint16Array':
      case 'Int32Array': case 'Uint32Array': case 'Float32Array': case 'Float64Array': case 'BigInt64Array': case 'BigUint64Array': {
        const view = v as View;
        const length = tag === 'DataView' ? view.byteLength : (view as unknown as { length: number }).length;
        return keep(new view.constructor(clone(view.buffer) as ArrayBuffer, view.byteOffset, length));
      }
      case 'Map': {
        const m = keep(new Map());
        for (const [k, x] of v as Map<unknown, unknown>) m.set(clone(k), clone(x));
        return m;
      }
      case 'Set': {
        const s = keep(new Set());
        for (const x of v as Set<unknown>) s.add(clone(x));
        return s;
      }
      case 'Error': {
        const e = v as Error;
        const Ctor = ERRORS[e.name] ?? Error;
        const c = keep(new Ctor(e.message));
        if (e.stack !== undefined) c.stack = e.stack;
        if ('cause' in e) (c as { cause?: unknown }).cause = clone(e.cause);
        return c;
      }
      case 'Array':
        out = keep(new Array((v as unknown[]).length));
        break;
      case 'Object':
        out = keep({});
        break;
      default:
        fail(`#<${tag}>`);
    }
    for (const key of Object.keys(v)) (out as Record<string, unknown>)[key] = clone((v as Record<string, unknown>)[key]);
    return out;
  };
  return clone(value);
}
