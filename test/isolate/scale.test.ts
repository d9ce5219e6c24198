// Many isolates at once, and the numbers the tier is chosen for: cold start
// (create + load), warm call overhead, memory per idle isolate. Printed, not
// asserted (except loose sanity bounds), since they depend on the machine.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Sandbox } from '../../src/sandbox/types.js';
import { build, call, Fixture, percentile, rssOf } from './helpers.js';

const fx = new Fixture();
after(() => fx.close());

const N = 200;

test(`${N} isolates alive at once: cold start, memory, warm calls`, async () => {
  const fn = await build({ 'index.ts': 'let calls = 0;\nexport async function handler(e: { n: number }) { calls++; return { n: e.n, calls }; }' }, { memoryMb: 128 }, 'many');
  // The first load starts the function's host; the numbers below are for isolates after that.
  const first = await fx.start(fn);
  const host = fx.backend.hostInfo().find((h) => h.functions.includes('many:nonet'))!;
  assert.ok(host?.pid);
  const rssBefore = rssOf(host.pid!);

  const sandboxes: Sandbox[] = [first];
  const cold: number[] = [];
  for (let i = 1; i < N; i++) {
    const t = performance.now();
    sandboxes.push(await fx.start(fn));
    cold.push(performance.now() - t);
  }
  cold.sort((a, b) => a - b);
  const outs = await Promise.all(sandboxes.map((sb, i) => call(sb, { n: i })));
  assert.deepEqual(outs.map((o) => (o.value as { n: number }).n), sandboxes.map((_, i) => i), 'all answer');
  assert.equal(fx.backend.hostInfo().find((h) => h.functions.includes('many:nonet'))!.isolates, N);

  const rssAfter = rssOf(host.pid!);
  const heaps = await Promise.all(sandboxes.map((sb) => sb.stats()));
  const heapTotal = heaps.reduce((n, s) => n + s.memoryBytes, 0);
  const perIsolate = (rssAfter - rssBefore) / (N - 1);

  const warm: number[] = [];
  const sb = sandboxes[0]!;
  for (let i = 0; i < 1000; i++) {
    const t = performance.now();
    await call(sb, { n: i });
    warm.push(performance.now() - t);
  }
  warm.sort((a, b) => a - b);

  const mb = (b: number) => (b / 1048576).toFixed(2);
  console.log(`isolate cold start (create + load): p50 ${percentile(cold, 0.5).toFixed(2)} ms, p99 ${percentile(cold, 0.99).toFixed(2)} ms`);
  console.log(`${N} isolates: host RSS ${mb(rssBefore)} -> ${mb(rssAfter)} MB (${mb(perIsolate)} MB per idle isolate); V8 heaps in use ${mb(heapTotal)} MB (${mb(heapTotal / N)} MB each)`);
  console.log(`warm call round trip (server -> host -> isolate -> back): p50 ${(percentile(warm, 0.5) * 1000).toFixed(0)} us, p99 ${(percentile(warm, 0.99) * 1000).toFixed(0)} us`);
  assert.ok(perIsolate < 8 * 1048576, 'an idle isolate costs a few MB at most');
  // Cold-start speed is measured by `npm run bench -- density`, not asserted here (it depends on the machine's load).
});
