// Each web-standard global the isolate tier provides, and the Node ones it does not.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { Sandbox } from '../../src/sandbox/types.js';
import { build, call, Fixture, SNIPPET_RUNNER } from './helpers.js';

const fx = new Fixture();
let sb: Sandbox;
before(async () => {
  sb = await fx.start(await build(SNIPPET_RUNNER));
});
after(() => fx.close());

async function run(code: string): Promise<unknown> {
  const o = await call(sb, { code });
  assert.ok(o.ok, `snippet failed: ${o.error?.message}\n${o.error?.stack ?? ''}`);
  return o.value;
}

test('setTimeout, clearTimeout, setInterval, clearInterval, queueMicrotask', async () => {
  assert.deepEqual(
    await run(`
      const order = [];
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, 30));
      const waited = Date.now() - t0;
      const cancelled = setTimeout(() => order.push('never'), 5);
      clearTimeout(cancelled);
      let n = 0;
      await new Promise((r) => { const i = setInterval((x) => { order.push(x + (++n)); if (n === 3) { clearInterval(i); r(); } }, 5, 'tick'); });
      queueMicrotask(() => order.push('micro'));
      order.push('sync');
      await null;
      await new Promise((r) => setTimeout(r, 20));
      return { order, waitedEnough: waited >= 25, id: typeof cancelled };
    `),
    { order: ['tick1', 'tick2', 'tick3', 'sync', 'micro'], waitedEnough: true, id: 'number' },
  );
});

test('TextEncoder: UTF-8, surrogate pairs, lone surrogates, encodeInto', async () => {
  assert.deepEqual(
    await run(`
      const e = new TextEncoder();
      const into = new Uint8Array(5);
      return {
        enc: e.encoding,
        ascii: [...e.encode('hi')],
        multi: [...e.encode('é€😀')],
        lone: [...e.encode('\\ud800x')],
        empty: e.encode().length,
        into: e.encodeInto('a€😀', into), bytes: [...into],
      };
    `),
    {
      enc: 'utf-8',
      ascii: [104, 105],
      multi: [0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80],
      lone: [0xef, 0xbf, 0xbd, 0x78],
      empty: 0,
      into: { read: 2, written: 4 },
      bytes: [0x61, 0xe2, 0x82, 0xac, 0],
    },
  );
});

test('TextDecoder: round trip, replacement, fatal, BOM, streaming, labels', async () => {
  assert.deepEqual(
    await run(`
      const d = new TextDecoder();
      const s = 'héllo €😀';
      const bytes = new TextEncoder().encode(s);
      const streamed = new TextDecoder();
      const parts = [bytes.slice(0, 7), bytes.slice(7, 11), bytes.slice(11)].map((b) => streamed.decode(b, { stream: true })).join('') + streamed.decode();
      let fatal = '';
      try { new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([0xff])); } catch (e) { fatal = e.name; }
      let label = '';
      try { new TextDecoder('latin1'); } catch (e) { label = e.name; }
      return {
        round: d.decode(bytes) === s,
        streamed: parts === s,
        bad: d.decode(new Uint8Array([0x61, 0xff, 0xe2, 0x82, 0x62, 0xf0, 0x9f])),
        bom: d.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])),
        keepBom: new TextDecoder('utf8', { ignoreBOM: true }).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])).length,
        view: d.decode(new DataView(bytes.buffer, 0, 1)),
        buffer: d.decode(bytes.buffer),
        fatal, label,
      };
    `),
    { round: true, streamed: true, bad: 'a\ufffd\ufffdb\ufffd', bom: 'A', keepBom: 2, view: 'h', buffer: 'héllo €😀', fatal: 'TypeError', label: 'RangeError' },
  );
});

test('URL and URLSearchParams', async () => {
  assert.deepEqual(
    await run(`
      const u = new URL('../c/d?x=1&y=a+b#frag', 'https://user:pw@Example.COM:8443/a/b/');
      u.searchParams.append('z', 'ü &=');
      const parts = { href: u.href, origin: u.origin, host: u.host, hostname: u.hostname, port: u.port, pathname: u.pathname, search: u.search, hash: u.hash, username: u.username, y: u.searchParams.get('y') };
      u.pathname = '/new path';
      u.search = '?q=2';
      const q = u.searchParams.get('q');
      u.port = 'not a port';
      let invalid = '';
      try { new URL('not a url'); } catch (e) { invalid = e.name; }
      const p = new URLSearchParams({ b: '2', a: '1' });
      p.append('a', '3');
      p.sort();
      const fromPairs = new URLSearchParams([['k', 'v']]);
      p.delete('b');
      return { parts, after: u.href, q, invalid, canParse: [URL.canParse('x:/y'), URL.canParse('nope')], json: JSON.stringify({ u }),
        sorted: p.toString(), all: p.getAll('a'), has: p.has('a'), size: p.size, pairs: [...fromPairs], parsed: [...new URLSearchParams('?a=%F0%9F%98%80&b&c=%zz')] };
    `),
    {
      parts: {
        href: 'https://user:pw@example.com:8443/a/c/d?x=1&y=a+b&z=%C3%BC+%26%3D#frag',
        origin: 'https://example.com:8443',
        host: 'example.com:8443',
        hostname: 'example.com',
        port: '8443',
        pathname: '/a/c/d',
        search: '?x=1&y=a+b&z=%C3%BC+%26%3D',
        hash: '#frag',
        username: 'user',
        y: 'a b',
      },
      after: 'https://user:pw@example.com:8443/new%20path?q=2#frag',
      q: '2',
      invalid: 'TypeError',
      canParse: [true, false],
      json: '{"u":"https://user:pw@example.com:8443/new%20path?q=2#frag"}',
      sorted: 'a=1&a=3',
      all: ['1', '3'],
      has: true,
      size: 2,
      pairs: [['k', 'v']],
      parsed: [['a', '😀'], ['b', ''], ['c', '%zz']],
    },
  );
});

test('atob and btoa', async () => {
  assert.deepEqual(
    await run(`
      let bad = '', wide = '';
      try { atob('a'); } catch (e) { bad = e.name; }
      try { btoa('€'); } catch (e) { wide = e.name; }
      return { b: [btoa(''), btoa('f'), btoa('fo'), btoa('foo'), btoa('\\xff\\xfe')], a: [atob('Zm9v'), atob(' Zm 8= '), atob('Zg')], bad, wide };
    `),
    { b: ['', 'Zg==', 'Zm8=', 'Zm9v', '//4='], a: ['foo', 'fo', 'f'], bad: 'InvalidCharacterError', wide: 'InvalidCharacterError' },
  );
});

test('structuredClone: types, shared references, cycles, refusals', async () => {
  assert.deepEqual(
    await run(`
      const shared = { s: 1 };
      const src = { d: new Date(5), r: /x/gi, m: new Map([[1, shared]]), set: new Set([shared]), u8: new Uint8Array([1, 2]), n: [1, [2]], e: new RangeError('boom'), big: 10n };
      src.self = src;
      const c = structuredClone(src);
      let fn = '', sym = '';
      try { structuredClone({ f() {} }); } catch (e) { fn = e.name; }
      try { structuredClone(Symbol('x')); } catch (e) { sym = e.name; }
      return {
        distinct: c !== src && c.m.get(1) !== shared, cycle: c.self === c, sharedKept: c.m.get(1) === [...c.set][0],
        date: c.d instanceof Date && c.d.getTime() === 5, re: c.r.flags + c.r.source, u8: [...c.u8] , u8Own: c.u8.buffer !== src.u8.buffer,
        n: c.n, err: c.e instanceof RangeError && c.e.message, big: typeof c.big, fn, sym,
      };
    `),
    { distinct: true, cycle: true, sharedKept: true, date: true, re: 'gix', u8: [1, 2], u8Own: true, n: [1, [2]], err: 'boom', big: 'bigint', fn: 'DataCloneError', sym: 'DataCloneError' },
  );
});

test('crypto.getRandomValues and crypto.randomUUID', async () => {
  const v = (await run(`
    const a = crypto.getRandomValues(new Uint8Array(64));
    const b = crypto.getRandomValues(new Uint32Array(4));
    let quota = '', type = '';
    try { crypto.getRandomValues(new Uint8Array(65537)); } catch (e) { quota = e.name; }
    try { crypto.getRandomValues(new Float64Array(1)); } catch (e) { type = e.name; }
    return { distinct: new Set(a).size, same: a === crypto.getRandomValues(a), b: b.length, uuids: [crypto.randomUUID(), crypto.randomUUID()], quota, type };
  `)) as { distinct: number; same: boolean; b: number; uuids: string[]; quota: string; type: string };
  assert.ok(v.distinct > 20, 'random bytes vary');
  assert.equal(v.same, true);
  assert.equal(v.b, 4);
  for (const u of v.uuids) assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(v.uuids[0], v.uuids[1]);
  assert.equal(v.quota, 'QuotaExceededError');
  assert.equal(v.type, 'TypeMismatchError');
});

test('console: levels and formats are captured in the call\'s logs', async () => {
  const o = await call(sb, {
    code: `
      console.log('plain', 1, true, null, undefined, [1, 'a'], { k: { deep: { deeper: { deepest: 1 } } } });
      console.info('%s is %d years and %i%%, %j %o', 'ann', 41.5, 7.9, { a: 1 }, [1]);
      console.warn(new Map([['a', 1]]), new Set([2]), new Uint8Array([3]), 10n, Symbol('s'), function named() {});
      console.error(new TypeError('bad'));
      console.debug({ 'a-b': 'q' }); const o = {}; o.o = o; console.log(o);
      return 1;
    `,
  });
  assert.ok(o.ok);
  const lines = o.logs.split('\n');
  assert.equal(lines[0], "plain 1 true null undefined [ 1, 'a' ] { k: { deep: { deeper: [Object] } } }");
  assert.equal(lines[1], 'ann is 41.5 years and 7%, {"a":1} [ 1 ]');
  assert.equal(lines[2], "Map(1) { 'a' => 1 } Set(1) { 2 } Uint8Array(1) [ 3 ] 10n Symbol(s) [Function: named]");
  assert.match(lines[3]!, /^TypeError: bad$/);
  assert.match(o.logs, /\{ 'a-b': 'q' \}\n\{ o: \[Circular\] \}\n$/);
});

test('performance.now exists; no process, require, Buffer or other Node globals; no fetch without network (Request, Response, Headers always)', async () => {
  assert.deepEqual(
    await run(`
      return ['process', 'require', 'Buffer', 'module', 'exports', '__dirname', 'global', 'setImmediate', 'fetch', 'Headers', 'Request', 'Response'].map((n) => n + ':' + typeof globalThis[n])
        .concat([typeof performance.now(), typeof structuredClone, typeof DOMException]);
    `),
    ['process:undefined', 'require:undefined', 'Buffer:undefined', 'module:undefined', 'exports:undefined', '__dirname:undefined', 'global:undefined', 'setImmediate:undefined', 'fetch:undefined', 'Headers:function', 'Request:function', 'Response:function', 'number', 'function', 'function'],
  );
  const o = await call(sb, { code: 'return process.env.HOME;' });
  assert.equal(o.error?.type, 'HandlerError');
  assert.match(o.error!.message, /process is not defined \(isolates have no Node globals; use "sandbox": "process" or "container"/);
  // The host's bridges are not reachable from function code.
  assert.deepEqual(await run("return Object.getOwnPropertyNames(globalThis).filter((n) => n.startsWith('__l'));"), ['__laminaUser']);
});

test('fetch with network: true goes through the host and returns a Response-like object', async () => {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.url === '/redirect') return res.writeHead(302, { location: '/json' }).end();
      res.writeHead(201, { 'content-type': 'application/json', 'x-echo': String(req.headers['x-in'] ?? '') });
      res.end(JSON.stringify({ method: req.method, url: req.url, body, type: req.headers['content-type'] ?? null }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fx2 = new Fixture();
  try {
    const net = await fx2.start(await build(SNIPPET_RUNNER, { network: true }, 'netfn'));
    const o = await call(net, {
      code: `
        const r = await fetch('${base}/json?a=1', { method: 'post', headers: { 'X-In': 'hey' }, body: JSON.stringify({ x: 1 }) });
        const j = await r.json();
        let reused = '';
        try { await r.text(); } catch (e) { reused = e.name; }
        const red = await fetch(new URL('/redirect', '${base}'));
        const form = await (await fetch('${base}/f', { method: 'PUT', body: new URLSearchParams({ a: 'b c' }) })).json();
        let bad = '';
        try { await fetch('file:///etc/passwd'); } catch (e) { bad = e.name + ': ' + e.message; }
        return { status: r.status, ok: r.ok, echo: r.headers.get('X-Echo'), ct: r.headers.get('content-type'), j, reused, used: r.bodyUsed,
          redirected: red.redirected, redUrl: red.url.endsWith('/json'), redBody: (await red.text()).length > 0, form, bad };
      `,
    });
    assert.ok(o.ok, o.error?.message);
    assert.deepEqual(o.value, {
      status: 201,
      ok: true,
      echo: 'hey',
      ct: 'application/json',
      j: { method: 'POST', url: '/json?a=1', body: '{"x":1}', type: 'text/plain;charset=UTF-8' },
      reused: 'TypeError',
      used: true,
      redirected: true,
      redUrl: true,
      redBody: true,
      form: { method: 'PUT', url: '/f', body: 'a=b+c', type: 'application/x-www-form-urlencoded;charset=UTF-8' },
      bad: 'TypeError: fetch failed: only http: and https: URLs can be fetched (got file:)',
    });
  } finally {
    await fx2.close();
    server.close();
  }
});
