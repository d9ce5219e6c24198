// The isolate host: a helper process that holds the V8 isolates of up to N
// functions of one network mode (each isolate with its own heap limit; see
// backend.ts for who goes where) and runs their calls. It is
// a separate process because one oversized allocation in an isolate makes V8
// abort the whole process that hosts it; see docs/architecture.md. Bundled
// alone at server start (build.ts); it imports node:* and isolated-vm's addon,
// copied next to it, and speaks protocol.ts on fd 3.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type IVM from 'isolated-vm';
import { hostFetch } from './host-fetch.js';
import { MAX_RESULT_BYTES } from '../frame-limits.js';
import { LineChannel } from '../line-channel.js';
import type { BackendFrame, FailureKind, HostFrame, InvokeFrame, IsoStats, LoadFrame } from './protocol.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ivm = (createRequire(import.meta.url)(path.join(here, 'isolated_vm.node')) as { ivm: typeof IVM }).ivm;
const PRELUDE = readFileSync(path.join(here, 'prelude.js'), 'utf8');
const MAX_LOG_CHUNK = 64 * 1024;
const MAX_URL_LENGTH = 1 << 20;
const URL_PARTS = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'] as const;
const URL_SETTABLE = new Set<string>(URL_PARTS.filter((p) => p !== 'origin'));

interface Iso {
  id: string;
  isolate: IVM.Isolate;
  memoryBytes: number;
  timeoutMs: number;
  /** The prelude's `__laminaInvokeBatch`: starts several calls in one hop to the isolate's thread. */
  invokeBatch?: IVM.Reference;
  fire?: IVM.Reference;
  settle?: IVM.Reference;
  kind?: 'fetch' | 'handler';
  timers: Map<number, NodeJS.Timeout>;
  /** Timers that came due while no call was in flight; they fire when the next call starts. */
  due: number[];
  inflight: Set<string>;
  /** Calls sent into the isolate and not yet answered, by id. */
  waiting: Map<string, InvokeFrame>;
  /** Invoke frames of this turn, not yet sent into the isolate (one batch per turn). */
  queued: InvokeFrame[];
  /** Log bytes outside any call since the last call began. */
  looseLogBytes: number;
  last: IsoStats;
  /** When the heap figures in `last` were read (performance.now()), and whether a read is under way. */
  heapReadAt?: number;
  heapReading?: boolean;
  /** Set when the host ended the isolate on purpose, so failures that follow are named by it. */
  death?: { kind: FailureKind; message: string };
}

const isos = new Map<string, Iso>();
let preludeCache: IVM.ExternalCopy<ArrayBuffer> | undefined;
/** The network mode of every isolate here (the backend never mixes modes in one host): argv[2]. */
const NETWORK = process.argv[2] === 'net';
/**
 * Isolates made ahead, prelude already run, waiting for a function's code: creating an
 * isolate, its context and the prelude is most of a load (about 9 of 10 ms; see
 * docs/benchmarks.md), so a first call should not wait for it. Their heap cap is fixed
 * at creation: they are made with the cap of the last load, and a few of other caps are kept
 * for the other functions of the host.
 */
const BLANKS = 2;
/** Blanks of other caps kept too (functions of a shared host ask for different caps), oldest dropped first. */
const MAX_BLANKS = 4;
interface Blank { iso: Iso; context: IVM.Context; boot: IVM.Reference; memoryMb: number }
const blanks: Blank[] = [];
let blankMb = 128;
const readyFor = (mb: number) => blanks.filter((b) => b.memoryMb === mb).length;
let filling = false;
/** V8 code cache of user code by source hash, so a function's next isolate here compiles nothing. Bounded. */
const CODE_CACHE_MAX = 256;
const SYNC_COMPILE_MAX = 256 * 1024;
const codeCache = new Map<string, IVM.ExternalCopy<ArrayBuffer>>();
const channel = new LineChannel<BackendFrame, HostFrame>(new net.Socket({ fd: 3, readable: true, writable: true }), onFrame, () => process.exit(0));
const send = (f: HostFrame) => {
  // Quiet (for making blanks) means no frame in or out: a first call often follows its load's answer at once.
  lastFrameAt = performance.now();
  channel.send(f);
};

function urlParts(u: URL): string {
  return JSON.stringify(Object.fromEntries(URL_PARTS.map((p) => [p, u[p]])));
}

/** Host functions the prelude takes off the global object. Their arguments come from untrusted code. */
function installBridges(iso: Iso, jail: IVM.Reference, network: boolean): void {
  jail.setSync('__lh_log', new ivm.Callback((call: unknown, text: unknown) => {
    if (typeof text !== 'string' || text.length === 0) return;
    const inCall = typeof call === 'string' && iso.inflight.has(call);
    if (!inCall) {
      if (iso.looseLogBytes >= MAX_LOG_CHUNK) return;
      iso.looseLogBytes += text.length;
    }
    send({ t: 'log', iso: iso.id, id: inCall ? (call as string) : null, data: text.slice(0, MAX_LOG_CHUNK) });
  }));
  // Answers of calls that ended while their batch still waits for others (see startBatch).
  // Ignored mode: the isolate's thread goes on at once, the host handles them on its own thread.
  jail.setSync('__lh_done', new ivm.Callback((answers: unknown) => answer(iso, answers), { ignored: true }));
  jail.setSync('__lh_timer', new ivm.Callback((tid: unknown, ms: unknown) => setTimer(iso, Number(tid), Number(ms))));
  jail.setSync('__lh_clear', new ivm.Callback((tid: unknown) => {
    clearTimeout(iso.timers.get(Number(tid)));
    iso.timers.delete(Number(tid));
  }));
  jail.setSync('__lh_random', new ivm.Callback((n: unknown) => {
    const size = Number(n);
    if (!Number.isInteger(size) || size < 0 || size > 65536) throw new RangeError('random: 0 to 65536 bytes');
    return randomBytes(size).toString('latin1');
  }));
  jail.setSync('__lh_url', new ivm.Callback((input: unknown, base: unknown) => {
    if (typeof input !== 'string' || input.length > MAX_URL_LENGTH || (base !== undefined && typeof base !== 'string')) return '';
    try {
      return urlParts(new URL(input, base as string | undefined));
    } catch {
      return '';
    }
  }));
  jail.setSync('__lh_urlset', new ivm.Callback((href: unknown, part: unknown, value: unknown) => {
    if (typeof href !== 'string' || typeof part !== 'string' || !URL_SETTABLE.has(part) || typeof value !== 'string' || value.length > MAX_URL_LENGTH) return '';
    try {
      const u = new URL(href);
      (u as unknown as Record<string, string>)[part] = value;
      return urlParts(u);
    } catch {
      return '';
    }
  }));
  if (network) jail.setSync('__lh_fetch', new ivm.Reference(hostFetch));
}

function setTimer(iso: Iso, tid: number, ms: number): void {
  if (!Number.isSafeInteger(tid) || !(ms >= 0)) return;
  clearTimeout(iso.timers.get(tid));
  const t = setTimeout(() => {
    iso.timers.delete(tid);
    if (iso.inflight.size > 0) fireTimer(iso, tid);
    else iso.due.push(tid);
  }, Math.min(ms, 2 ** 31 - 1));
  iso.timers.set(tid, t);
}

function fireTimer(iso: Iso, tid: number): void {
  // Bounded on its own: a call's deadline is enforced by the backend, but a
  // callback must not spin forever after its call ended.
  iso.fire?.apply(undefined, [tid], { timeout: iso.timeoutMs }).catch((err: unknown) => {
    const kind = classify(iso, err);
    if (kind === 'handler') return;
    const message = kind === 'timeout' ? `a timer callback ran longer than ${iso.timeoutMs} ms` : errorText(err);
    end(iso, kind, message);
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Names a failure that came out of isolated-vm. */
function classify(iso: Iso, err: unknown): FailureKind {
  if (iso.death) return iso.death.kind;
  const msg = errorText(err);
  if (/memory limit|Array buffer allocation failed/i.test(msg)) return 'memory';
  if (/Script execution timed out/.test(msg)) return 'timeout';
  if (iso.isolate.isDisposed) return 'crash';
  return 'handler';
}

function failureMessage(iso: Iso, kind: FailureKind, err: unknown): string {
  if (iso.death) return iso.death.message;
  if (kind === 'memory') return `the isolate exceeded its memory limit of ${iso.memoryBytes / 1048576} MB`;
  if (kind === 'timeout') return `the code ran longer than ${iso.timeoutMs} ms`;
  return errorText(err);
}

/** Ends an isolate for good and tells the backend, unless the backend asked for it. */
function end(iso: Iso, kind: FailureKind, message: string, quiet = false): void {
  if (iso.death) return;
  iso.death = { kind, message };
  if (kind === 'memory') iso.last.peak = Math.max(iso.last.peak, iso.memoryBytes);
  for (const t of iso.timers.values()) clearTimeout(t);
  iso.timers.clear();
  iso.due = [];
  try {
    iso.isolate.dispose();
  } catch {
    /* already disposed (isolated-vm does it itself on a memory overrun) */
  }
  isos.delete(iso.id);
  if (!quiet) send({ t: 'dead', iso: iso.id, kind, message });
  // Every call it has not answered fails with its death, queued ones included (their batch never started).
  for (const f of iso.waiting.values()) {
    iso.inflight.delete(f.id);
    send({ t: 'fail', q: f.q, kind, message, stats: { ...iso.last } });
  }
  iso.waiting.clear();
  iso.queued = [];
}

/** Heap numbers need the isolate idle (the async call waits for it); a busy one reports its last sample. */
/** A call's heap figures are at most this old (ms): reading them is a hop to the isolate's thread. */
const HEAP_READ_MS = 100;

/**
 * A finished call's stats, without waiting for a hop to the isolate's thread: CPU time now,
 * the heap as last read (maybeReadHeap refreshes it). The heap cap itself is V8's
 * (memoryLimit), not these figures, so their age only delays what the records report.
 */
function statsNow(iso: Iso): IsoStats {
  const l = iso.last;
  l.cpuMs = Number(iso.isolate.cpuTime) / 1e6;
  return { used: l.used, peak: l.peak, cpuMs: l.cpuMs };
}

/** After answers: when the heap figures are older than HEAP_READ_MS and the isolate is idle, a read starts for the calls that follow. */
function maybeReadHeap(iso: Iso): void {
  if (!iso.heapReading && iso.inflight.size === 0 && !iso.death && performance.now() - (iso.heapReadAt ?? 0) >= HEAP_READ_MS) {
    iso.heapReading = true;
    void sample(iso).finally(() => {
      iso.heapReading = false;
      iso.heapReadAt = performance.now();
    });
  }
}

async function sample(iso: Iso): Promise<IsoStats> {
  iso.last.cpuMs = Number(iso.isolate.cpuTime) / 1e6;
  if (iso.inflight.size > 0 || iso.death) return { ...iso.last };
  try {
    const h = await iso.isolate.getHeapStatistics();
    iso.last.used = h.used_heap_size + h.externally_allocated_size;
    iso.last.peak = Math.max(iso.last.peak, iso.last.used);
  } catch {
    /* disposed meanwhile */
  }
  return { ...iso.last };
}

/** A new isolate with its bridges and the prelude run: everything but the function's code. */
function makeBlank(memoryMb: number): Blank {
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  const iso: Iso = { id: '', isolate, memoryBytes: memoryMb * 1048576, timeoutMs: 1000, timers: new Map(), due: [], inflight: new Set(), waiting: new Map(), queued: [], looseLogBytes: 0, last: { used: 0, peak: 0, cpuMs: 0 } };
  try {
    // The isolate is new and runs nothing yet, so the quick sync calls cannot block.
    const context = isolate.createContextSync();
    installBridges(iso, context.global, NETWORK);
    const prelude = isolate.compileScriptSync(PRELUDE, { filename: 'lamina:prelude', cachedData: preludeCache, produceCachedData: !preludeCache }) as IVM.Script & IVM.CachedDataResult;
    if (!preludeCache && prelude.cachedData) preludeCache = prelude.cachedData;
    prelude.runSync(context, { timeout: 5000 });
    const take = (name: string): IVM.Reference => {
      const ref = context.global.getSync(name, { reference: true }) as IVM.Reference;
      context.global.deleteSync(name);
      return ref;
    };
    const boot = take('__laminaBoot');
    iso.invokeBatch = take('__laminaInvokeBatch');
    iso.fire = take('__laminaFire');
    iso.settle = take('__laminaSettle');
    return { iso, context, boot, memoryMb };
  } catch (err) {
    isolate.dispose();
    throw err;
  }
}

/** When the last frame came in: blanks are made while the host is quiet. */
let lastFrameAt = 0;
const QUIET_MS = 20;
/** Longest a missing blank waits for quiet; under constant traffic one is made anyway. */
const FILL_WAIT_MS = 500;
let fillWanted = 0;

/** Whether some isolate here is running a call (making a blank would hold up its answer). */
function callsInFlight(): boolean {
  for (const iso of isos.values()) if (iso.inflight.size > 0) return true;
  return false;
}

/**
 * Tops the blanks up once the host has been quiet for a moment: making one holds
 * this thread for milliseconds, which a call or a load arriving must not wait for.
 */
function fillBlanks(): void {
  if (filling || readyFor(blankMb) >= BLANKS) return;
  filling = true;
  fillWanted ||= performance.now();
  const now = performance.now();
  const wait = callsInFlight() ? QUIET_MS : Math.max(0, lastFrameAt + QUIET_MS - now);
  setTimeout(() => {
    filling = false;
    if (readyFor(blankMb) >= BLANKS) return void (fillWanted = 0);
    const busy = performance.now() - lastFrameAt < QUIET_MS || callsInFlight();
    if (busy && performance.now() - fillWanted < FILL_WAIT_MS) return fillBlanks();
    fillWanted = 0;
    try {
      blanks.push(makeBlank(blankMb));
      const stale = blanks.length > MAX_BLANKS ? blanks.findIndex((b) => b.memoryMb !== blankMb) : -1;
      if (stale >= 0) blanks.splice(stale, 1)[0]!.iso.isolate.dispose();
    } catch {
      return; // out of memory in this host: loads make their own
    }
    fillBlanks();
  }, wait).unref();
}

/** A blank of this heap cap: a ready one, else made now. */
function takeBlank(memoryMb: number): Blank {
  // Blanks are made next for the cap of the last load.
  blankMb = memoryMb;
  const i = blanks.findIndex((b) => b.memoryMb === memoryMb);
  return i >= 0 ? blanks.splice(i, 1)[0]! : makeBlank(memoryMb);
}

async function compileUser(isolate: IVM.Isolate, code: string, filename: string): Promise<IVM.Script> {
  const key = createHash('sha256').update(filename).update('\0').update(code).digest('base64');
  const cachedData = codeCache.get(key);
  const opts = { filename, cachedData, produceCachedData: !cachedData };
  // V8 compiles lazily (a quick pre-parse): a small bundle compiles here in well under a millisecond, cheaper
  // than the hop to isolated-vm's thread and back (milliseconds on a busy machine). A big one goes off-thread.
  const script = (code.length <= SYNC_COMPILE_MAX ? isolate.compileScriptSync(code, opts) : await isolate.compileScript(code, opts)) as IVM.Script & IVM.CachedDataResult;
  if (!cachedData && script.cachedData) {
    if (codeCache.size >= CODE_CACHE_MAX) codeCache.delete(codeCache.keys().next().value!);
    codeCache.set(key, script.cachedData);
  }
  return script;
}

/** sample() for an isolate known to be idle (just loaded): read in place, no hop to its thread. */
function sampleIdle(iso: Iso): IsoStats {
  const h = iso.isolate.getHeapStatisticsSync();
  iso.last = { used: h.used_heap_size + h.externally_allocated_size, peak: Math.max(iso.last.peak, h.used_heap_size + h.externally_allocated_size), cpuMs: Number(iso.isolate.cpuTime) / 1e6 };
  iso.heapReadAt = performance.now();
  return { ...iso.last };
}

async function load(f: LoadFrame): Promise<void> {
  const memoryMb = Math.max(8, f.memoryMb);
  let blank: Blank;
  try {
    if (f.network !== NETWORK) throw new Error(`a ${f.network ? 'network' : 'no-network'} function was sent to a host of the other mode`);
    blank = takeBlank(memoryMb);
  } catch (err) {
    send({ t: 'fail', q: f.q, kind: 'crash', message: errorText(err) });
    // Every request is answered, or the server would count the call as running here.
    if (f.call) send({ t: 'ok', q: f.call.q });
    return;
  }
  const { iso, context, boot } = blank;
  iso.id = f.iso;
  iso.timeoutMs = f.timeoutMs;
  isos.set(f.iso, iso);
  try {
    const script = await compileUser(iso.isolate, f.code, f.filename);
    await script.run(context, { timeout: f.timeoutMs });
    iso.kind = (await boot.apply(undefined, [JSON.stringify(f.fn.env)], { timeout: 1000, result: { copy: true } })) === 'fetch' ? 'fetch' : 'handler';
    send({ t: 'ok', q: f.q, stats: sampleIdle(iso), kind: iso.kind });
  } catch (err) {
    const kind = classify(iso, err);
    const message = failureMessage(iso, kind, err);
    end(iso, kind, message, true);
    send({ t: 'fail', q: f.q, kind, message, stack: kind === 'handler' && err instanceof Error ? err.stack : undefined });
    if (f.call) send({ t: 'ok', q: f.call.q });
    return fillBlanks();
  }
  const c = f.call;
  if (c) {
    // The call was prepared for an event handler; a fetch handler's goes back to the server to be prepared anew.
    if (iso.kind === 'handler') invoke({ t: 'invoke', q: c.q, iso: f.iso, id: c.id, event: c.event, context: { ...c.context, deadlineMs: Date.now() + c.budgetMs }, ...(c.url !== undefined ? { url: c.url } : {}) });
    else send({ t: 'ok', q: c.q });
  }
  // Only now: making a blank holds this thread for milliseconds, which the load must not wait for.
  fillBlanks();
}

/** Isolates with invoke frames queued in this turn; flushed in a microtask, after every frame of the read. */
const toStart = new Set<Iso>();

/**
 * Queues a call: the frames that arrive in one read (the server writes the calls of
 * one of its turns at once) go into the isolate in one hop to its thread, and their
 * answers come back together (startBatch), where a hop each way per call cost most
 * of the host's CPU per call.
 */
function invoke(f: InvokeFrame): void {
  const iso = isos.get(f.iso);
  if (!iso?.invokeBatch) return send({ t: 'fail', q: f.q, kind: 'crash', message: 'the isolate is gone' });
  // Ids key the answers: the server never reuses one, and a second would shadow the first.
  if (iso.waiting.has(f.id) || iso.inflight.has(f.id)) return send({ t: 'fail', q: f.q, kind: 'crash', message: 'a call with this id is already running in the isolate' });
  if (iso.inflight.size === 0) iso.looseLogBytes = 0;
  iso.inflight.add(f.id);
  iso.waiting.set(f.id, f);
  iso.queued.push(f);
  if (toStart.size === 0) queueMicrotask(startQueued);
  toStart.add(iso);
}

function startQueued(): void {
  for (const iso of toStart) startBatch(iso);
  toStart.clear();
}

/**
 * One hop into the isolate for every call queued this turn. The prelude answers
 * the calls that end in one microtask flush together: through this batch's promise
 * when that flush ends the batch's last call, else through `__lh_done`. The promise
 * stays pending while any call of the batch runs, so an isolate that dies (a memory
 * overrun, a dispose at a deadline) rejects it and its calls are failed.
 */
function startBatch(iso: Iso): void {
  const batch = iso.queued;
  iso.queued = [];
  if (iso.death || !iso.invokeBatch || batch.length === 0) return;
  const flat: unknown[] = [];
  // Plain values (prelude CALL_FIELDS): copying them is cheaper than an object per call.
  for (const f of batch) {
    const c = f.context;
    flat.push(f.id, f.event, c.requestId, c.functionName, c.functionVersion, c.memoryLimitMb, c.coldStart, c.deadlineMs, f.url);
  }
  let done: Promise<unknown>;
  try {
    done = iso.invokeBatch.apply(undefined, [flat], { arguments: { copy: true }, result: { promise: true, copy: true } }) as Promise<unknown>;
  } catch (err) {
    // Disposed meanwhile: as a rejection would.
    done = Promise.reject(err);
  }
  for (const tid of iso.due.splice(0)) fireTimer(iso, tid);
  done.then(
    (answers) => answer(iso, answers),
    (err: unknown) => {
      const kind = classify(iso, err);
      const message = failureMessage(iso, kind, err);
      end(iso, kind === 'handler' ? 'crash' : kind, message, true);
    },
  );
}

/**
 * Answers from the isolate: [id, out, id, out, ...], each out as the prelude writes
 * it. Hostile (user code can tamper with the prelude's globals): anything but
 * strings in pairs, or an id that is not a call waiting here, ends the isolate.
 */
function answer(iso: Iso, answers: unknown): void {
  if (iso.death) return;
  if (!Array.isArray(answers) || answers.length % 2 !== 0) return badOutput(iso);
  for (let i = 0; i < answers.length; i += 2) {
    const id: unknown = answers[i];
    const out: unknown = answers[i + 1];
    const f = typeof id === 'string' ? iso.waiting.get(id) : undefined;
    if (!f || typeof out !== 'string') return badOutput(iso);
    // Answered by settleOne, or failed with every other call when its answer ended the isolate.
    settleOne(iso, f, out);
    iso.waiting.delete(f.id);
    if (iso.death) return;
  }
  maybeReadHeap(iso);
}

/** One call's answer from the isolate: 'o' / 'e' + JSON, or 'O' / 'E' when waitUntil work goes on. */
function settleOne(iso: Iso, f: InvokeFrame, out: string): void {
  // 'O' / 'E': answered, but waitUntil work goes on; the call stays in flight (its logs, its timers) until it settles.
  if (out.length === 0) return badOutput(iso);
  const more = out[0] === 'O' || out[0] === 'E';
  if (!more) iso.inflight.delete(f.id);
  else void settleCall(iso, f.id);
  if (out[0] === 'o' || out[0] === 'O') {
    // The result text is the isolate's (user code may replace JSON.stringify): the server parses it as hostile.
    if (Buffer.byteLength(out) - 1 > MAX_RESULT_BYTES) return send({ t: 'fail', q: f.q, kind: 'handler', message: `the handler's return value is over the cap of ${MAX_RESULT_BYTES} bytes`, stats: statsNow(iso), ...(more ? { more } : {}) });
    // No spread for the common frame: this runs for every call.
    return send(more ? { t: 'result', q: f.q, value: out.slice(1), stats: statsNow(iso), more } : { t: 'result', q: f.q, value: out.slice(1), stats: statsNow(iso) });
  }
  if (out[0] !== 'e' && out[0] !== 'E') return badOutput(iso);
  let e: { name: string; message: string; stack?: string };
  try {
    e = JSON.parse(out.slice(1)) as typeof e;
    if (typeof e?.message !== 'string') throw new TypeError('no message');
  } catch {
    return badOutput(iso);
  }
  if (e.name === 'InvalidResponse') return send({ t: 'fail', q: f.q, kind: 'handler', type: 'InvalidResponse', message: e.message, stats: statsNow(iso), ...(more ? { more } : {}) });
  if (e.name === 'RangeError' && /Array buffer allocation failed/.test(e.message)) {
    // An allocation the heap limit refused: the call failed for memory, as on the other tiers.
    return end(iso, 'memory', `the isolate exceeded its memory limit of ${iso.memoryBytes / 1048576} MB (${e.message})`, true);
  }
  send({ t: 'fail', q: f.q, kind: 'handler', message: e.message, stack: e.stack, stats: statsNow(iso), ...(more ? { more } : {}) });
}

/** Waits out a call's waitUntil work (the backend bounds it by the call's deadline), then says so. */
async function settleCall(iso: Iso, id: string): Promise<void> {
  try {
    await iso.settle?.apply(undefined, [id], { result: { promise: true } });
  } catch (err) {
    const kind = classify(iso, err);
    if (kind !== 'handler') return end(iso, kind, failureMessage(iso, kind, err));
  }
  iso.inflight.delete(id);
  send({ t: 'settled', iso: iso.id, id });
}

/** The prelude's answers were not what it writes (code in the isolate tampered with it): the isolate ends, its calls fail. */
function badOutput(iso: Iso): void {
  end(iso, 'crash', 'protocol violation: the isolate answered a call with a malformed result (was JSON.stringify replaced?)', true);
}

function onFrame(f: BackendFrame): void {
  lastFrameAt = performance.now();
  switch (f.t) {
    case 'load':
      return void load(f);
    case 'invoke':
      return invoke(f);
    case 'stats': {
      const iso = isos.get(f.iso);
      if (!iso) return send({ t: 'ok', q: f.q });
      return void sample(iso).then((stats) => send({ t: 'ok', q: f.q, stats }));
    }
    case 'dispose': {
      const iso = isos.get(f.iso);
      if (iso) end(iso, 'crash', 'the isolate was stopped', true);
      return send({ t: 'ok', q: f.q });
    }
  }
}

send({ t: 'ready', pid: process.pid });
fillBlanks();
