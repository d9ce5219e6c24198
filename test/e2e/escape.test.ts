// Escape attempts from inside a function, through the real server. Each tier
// states which attempts it stops (docs/security.md); each claim is tested here.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { deployCode, invoke, startServer, testTiers, type TestServer } from '../helpers/server.js';

const PROBE = `
import fs from 'node:fs';
import { existsSync } from 'node:fs';
import net from 'node:net';
import cp from 'node:child_process';
const attempt = async (fn) => { try { const v = await fn(); return { ok: true, v: v === undefined ? null : String(v).slice(0, 200) }; } catch (e) { return { ok: false, code: e.code ?? e.name, msg: String(e.message).slice(0, 200) }; } };
export async function handler(e) {
  switch (e.try) {
    case 'read': return attempt(() => fs.readFileSync(e.path, 'utf8'));
    case 'list': return attempt(() => fs.readdirSync(e.path).join(','));
    case 'write': return attempt(() => fs.writeFileSync(e.path, 'x'));
    case 'writetmp': return attempt(() => { const p = (process.env.TMPDIR ?? '.') + '/ok.txt'; fs.writeFileSync('ok.txt', 'fine'); return fs.readFileSync('ok.txt', 'utf8'); });
    case 'spawn': return attempt(() => cp.execSync('id').toString());
    case 'env': return { ok: true, v: process.env };
    case 'connect': return attempt(() => new Promise((res, rej) => { const s = net.connect(e.port, e.host); s.on('connect', () => { s.destroy(); res('connected'); }); s.on('error', rej); setTimeout(() => rej(Object.assign(new Error('timed out'), { code: 'TIMEOUT' })), 2000); }));
    case 'signal': return attempt(() => process.kill(e.pid, 'SIGKILL'));
    default: return { ok: true };
  }
}`;

for (const tier of testTiers().filter((t) => t !== 'isolate')) {
  describe(`escape attempts [${tier}]`, () => {
    let s: TestServer;
    let listener: net.Server;
    let port = 0;
    before(async () => {
      s = await startServer({ tier, env: { LAMINA_SECRET_FOR_TEST: 'hunter2' } });
      await deployCode(s, 'probe', PROBE, { env: { ONLY_THIS: 'yes' } });
      listener = net.createServer((c) => c.end());
      await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
      port = (listener.address() as net.AddressInfo).port;
    });
    after(async () => {
      listener.close();
      await s.stop();
    });
    const attempt = async (event: Record<string, unknown>) => {
      const r = await invoke(s, 'probe', event);
      assert.equal(r.status, 200, r.text);
      return r.body as { ok: boolean; v?: unknown; code?: string };
    };
    const stillServes = async () => assert.deepEqual((await invoke(s, 'probe', {})).body, { ok: true });

    test('cannot read host files outside its code', async () => {
      for (const p of ['/etc/passwd', '/etc/shadow', `${s.dataDir}/token`, `${s.dataDir}/lamina.db`, '/proc/1/environ']) {
        const r = await attempt({ try: 'read', path: p });
        assert.equal(r.ok, false, `read ${p}: ${JSON.stringify(r)}`);
      }
      await stillServes();
    });

    test("cannot list the host's root or the data dir", async () => {
      for (const p of ['/', s.dataDir, '/root']) {
        const r = await attempt({ try: 'list', path: p });
        // A container may show its own tiny root; it must not be the host's.
        if (r.ok) assert.doesNotMatch(String(r.v), /\b(root|home|work|var)\b.*\b(etc)\b|lamina\.db|token/, `list ${p}: ${r.v}`);
      }
      await stillServes();
    });

    test('cannot write outside its tmp dir, but can write inside it', async () => {
      for (const p of ['/etc/evil', `${s.dataDir}/evil`, '/usr/lib/evil']) {
        const r = await attempt({ try: 'write', path: p });
        assert.equal(r.ok, false, `write ${p}: ${JSON.stringify(r)}`);
      }
      // A container's /tmp is its own private tmpfs: writing there is fine, but the
      // host's /tmp must not see it.
      const hostTmp = `/tmp/lamina-escape-test-${process.pid}`;
      await attempt({ try: 'write', path: hostTmp });
      assert.equal(existsSync(hostTmp), false, `${hostTmp} appeared on the host`);
      const ok = await attempt({ try: 'writetmp' });
      assert.deepEqual(ok, { ok: true, v: 'fine' });
    });

    test('cannot spawn a process', async () => {
      const r = await attempt({ try: 'spawn' });
      assert.equal(r.ok, false, JSON.stringify(r));
      await stillServes();
    });

    test("sees only its manifest's environment, none of the server's", async () => {
      const r = await attempt({ try: 'env' });
      assert.deepEqual(r.v, { ONLY_THIS: 'yes' });
    });

    test("cannot connect to the server's port or a host service when network is off", async () => {
      const url = new URL(s.url);
      for (const p of [Number(url.port), port]) {
        const r = await attempt({ try: 'connect', host: '127.0.0.1', port: p });
        assert.equal(r.ok, false, `connect to ${p}: ${JSON.stringify(r)}`);
      }
      await stillServes();
    });

    test('can connect when the manifest asks for network', async () => {
      await deployCode(s, 'netprobe', PROBE, { network: true });
      const r = await invoke(s, 'netprobe', { try: 'connect', host: '127.0.0.1', port });
      assert.deepEqual(r.body, { ok: true, v: 'connected' });
    });

    test('cannot signal the worker', async () => {
      const r = await attempt({ try: 'signal', pid: s.proc.pid });
      assert.equal(r.ok, false, JSON.stringify(r));
      assert.equal(s.proc.exitCode, null);
      await stillServes();
    });
  });
}
