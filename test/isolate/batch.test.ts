// Calls that reach an isolate host in one read go into the isolate in one batch
// and come back together (host.ts startBatch, the prelude's invokeBatch). Each
// call must still get its own answer, a slow call must not hold up the fast ones
// of its batch, and answers an isolate tampers with end that isolate alone.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { build, call, Fixture, SNIPPET_RUNNER } from './helpers.js';

const fx = new Fixture();
after(() => fx.close());

test('calls sent together get their own answers; a slow one does not hold up the rest of its batch', async () => {
  const sb = await fx.start(await build(SNIPPET_RUNNER, { instanceConcurrency: 16 }));
  // Sent in one turn: the server's channel writes them at once, so the host reads them together.
  let slowDone = false;
  const slow = call(sb, { code: 'await new Promise((r) => setTimeout(r, 300)); return "slow";' }).then((o) => ((slowDone = true), o));
  const fast = Array.from({ length: 8 }, (_, i) => call(sb, { code: i % 3 === 2 ? `throw new Error("no ${i}")` : i % 3 === 1 ? `await null; return ${i};` : `return ${i};` }));
  const outs = await Promise.all(fast);
  assert.equal(slowDone, false, 'the fast calls answered while the slow one of their batch still ran');
  for (const [i, o] of outs.entries()) {
    if (i % 3 === 2) assert.equal(o.error?.message, `no ${i}`);
    else assert.equal(o.value, i);
  }
  assert.equal((await slow).value, 'slow');
  assert.equal(sb.alive, true);
  // And the isolate goes on serving calls one at a time.
  assert.equal((await call(sb, { code: 'return "again";' })).value, 'again');
});

test('an isolate that forges the answers of its batch ends alone; a neighbour in the same host keeps answering', async () => {
  const fn = await build(SNIPPET_RUNNER, { instanceConcurrency: 4 }, 'forger');
  const neighbour = await fx.start(await build(SNIPPET_RUNNER, {}, 'honest'));
  const attacks = [
    // A number where the prelude writes the answer's text.
    'const then = Promise.prototype.then; Promise.prototype.then = function (f, r) { return then.call(this, typeof f === "function" ? (v) => f(typeof v === "string" ? 42 : v) : f, r); }; return 1;',
    // An id that is no call in flight (a setter on Array.prototype catches the prelude's first write).
    'Object.defineProperty(Array.prototype, "0", { configurable: true, set(v) { Object.defineProperty(this, "0", { value: "forged-id", writable: true, enumerable: true, configurable: true }); } }); return 1;',
    // An answer whose text is not what the prelude writes ('o' or 'e' first).
    'const then = Promise.prototype.then; Promise.prototype.then = function (f, r) { return then.call(this, typeof f === "function" ? (v) => f(typeof v === "string" && v[0] === "o" ? "x" + v : v) : f, r); }; return 1;',
  ];
  for (const code of attacks) {
    const sb = await fx.start(fn);
    // The first call installs the tampering (its own answer may already be forged); the next ones meet it.
    const first = await call(sb, { code });
    const next = first.ok ? await call(sb, { code: 'return 2;' }) : first;
    assert.equal(next.ok, false, `tampered answers are refused (${code.slice(0, 40)})`);
    assert.equal(next.error?.type, 'SandboxCrashed');
    assert.match(next.error!.message, /protocol violation/);
    assert.equal(sb.alive, false, 'the forging isolate is ended');
    assert.equal((await call(neighbour, { code: 'return "fine";' })).value, 'fine');
  }
});
