// The container tier's Python sees its whole standard library: every extension
// module that imports on the host imports in the sandbox (their shared
// libraries are in the sandbox's root), and the modules built on them work.
// Also: a function's own process cap (manifest "processes", ol.yaml limits.procs).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PYTHON } from '../../src/sandbox/container/bwrap-args.js';
import type { LoadSpec, Sandbox } from '../../src/sandbox/types.js';
import { call, hasBwrap, openBackend, type Harness } from '../container/helpers.js';

/** Every lib-dynload module, and the stdlib modules that sit on them, that import on the host. */
const LIST_MODULES = `
import json, os, sys, sysconfig, importlib
names = set()
for d in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}:
    dyn = os.path.join(d, "lib-dynload")
    if os.path.isdir(dyn):
        names.update(f.split(".")[0] for f in os.listdir(dyn) if f.endswith(".so"))
names.update(["ctypes", "ssl", "sqlite3", "hashlib", "bz2", "lzma", "readline", "curses", "curses.panel", "dbm", "dbm.ndbm", "decimal", "uuid", "zoneinfo", "multiprocessing", "asyncio", "json", "zlib", "pyexpat", "xml.etree.ElementTree", "crypt", "resource", "termios", "mmap"])
ok = []
for n in sorted(names):
    try:
        importlib.import_module(n)
        ok.append(n)
    except Exception:
        pass
print(json.dumps(ok))
`;

const FUNCTION = `
import importlib
def f(event):
    failed = {}
    for n in event["modules"]:
        try:
            importlib.import_module(n)
        except Exception as e:
            failed[n] = f"{type(e).__name__}: {e}"
    # The libraries really work, not only load.
    import ctypes, ctypes.util, hashlib, sqlite3, ssl, bz2, lzma, zoneinfo, datetime, uuid
    libc = ctypes.CDLL(None)
    db = sqlite3.connect(":memory:")
    db.execute("create table t (x)")
    db.execute("insert into t values (42)")
    return {
        "failed": failed,
        "abs": libc.abs(-7),
        "sha3": hashlib.sha3_256(b"x").hexdigest()[:8],
        "sqlite": db.execute("select x from t").fetchone()[0],
        "ssl": ssl.OPENSSL_VERSION.split()[0],
        "bz2": bz2.decompress(bz2.compress(b"abc")).decode(),
        "lzma": lzma.decompress(lzma.compress(b"abc")).decode(),
        "tz": datetime.datetime(2024, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")).utcoffset().total_seconds(),
        "uuid": len(str(uuid.uuid4())),
    }
`;

describe('python standard library in the container tier', { skip: !hasBwrap() && 'bubblewrap is not installed' }, () => {
  let h: Harness;
  let dir: string;
  const sandboxes: Sandbox[] = [];
  before(async () => {
    const opened = await openBackend();
    if (typeof opened === 'string') throw new Error(opened);
    h = opened;
    dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-pystd-'));
    chmodSync(dir, 0o755);
    writeFileSync(path.join(dir, 'f.py'), FUNCTION, { mode: 0o644 });
    writeFileSync(path.join(dir, 'procs.py'), 'import threading, time\ndef f(event):\n    started = 0\n    try:\n        for _ in range(event["n"]):\n            t = threading.Thread(target=time.sleep, args=(2,), daemon=True)\n            t.start()\n            started += 1\n    except RuntimeError as e:\n        return {"started": started, "error": str(e)}\n    return {"started": started}\n', { mode: 0o644 });
  });
  after(async () => {
    await Promise.all(sandboxes.map((s) => s.destroy()));
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const load = async (over: Partial<LoadSpec>) => {
    const sb = await h.backend.create({ runtime: 'python', memoryMb: 256, network: false });
    sandboxes.push(sb);
    await sb.load({ functionName: 'std', functionVersion: 1, codeDir: dir, entry: 'f.py', handler: 'f', env: {}, memoryMb: 256, timeoutMs: 20000, network: false, ...over });
    return sb;
  };

  test('every extension module that imports on the host imports in the sandbox, and ctypes, sqlite3, ssl, bz2, lzma, zoneinfo work', async () => {
    const modules = JSON.parse(execFileSync(PYTHON, ['-I', '-c', LIST_MODULES], { encoding: 'utf8' })) as string[];
    assert.ok(modules.length > 40, `only ${modules.length} modules import on the host`);
    for (const m of ['_ctypes', '_ssl', '_sqlite3', '_hashlib', '_bz2', '_lzma', 'readline', '_curses']) assert.ok(modules.includes(m), `${m} does not import on the host`);
    const sb = await load({});
    const r = await call(sb, { modules }, 20000);
    assert.equal(r.ok, true, JSON.stringify(r.error));
    const v = r.value as Record<string, unknown>;
    assert.deepEqual(v.failed, {});
    assert.deepEqual([v.abs, v.sqlite, v.bz2, v.lzma, v.tz, v.uuid], [7, 42, 'abc', 'abc', 7200, 36]);
    assert.equal(v.ssl, 'OpenSSL');
    assert.equal(v.sha3, execFileSync(PYTHON, ['-I', '-c', 'import hashlib; print(hashlib.sha3_256(b"x").hexdigest()[:8])'], { encoding: 'utf8' }).trim());
  });

  test('a function\'s "processes" cap limits its threads; the default cap allows more', async () => {
    const capped = await load({ entry: 'procs.py', maxProcesses: 8 });
    const r = await call(capped, { n: 20 }, 20000);
    assert.equal(r.ok, true, JSON.stringify(r.error));
    const v = r.value as { started: number; error?: string };
    assert.ok(v.started < 8, `started ${v.started} threads under a cap of 8`);
    assert.match(v.error ?? '', /can't start new thread/);
    const free = await load({ entry: 'procs.py' });
    const r2 = await call(free, { n: 20 }, 20000);
    assert.deepEqual(r2.value, { started: 20 });
  });
});

describe('python on a worker whose default tier cannot host it', () => {
  test('the deploy-time check names the container tier', async () => {
    const { SandboxProvider } = await import('../../src/sandbox/provider.js');
    const p = await SandboxProvider.create({ tier: 'process', poolSize: 0, log: () => undefined });
    try {
      const why = p.check({ sandbox: 'auto', runtime: 'python' });
      const container = p.tiers.find((t) => t.tier === 'container');
      assert.match(why ?? '', /sandbox tier "process" cannot run the python runtime: python functions run on the container tier only/);
      if (container?.ok) {
        assert.match(why ?? '', /set "sandbox": "container"; this worker runs "auto" functions on "process"/);
        assert.equal(p.check({ sandbox: 'container', runtime: 'python' }), undefined);
      } else assert.match(why ?? '', /the container tier is unavailable here/);
      assert.equal(p.check({ sandbox: 'auto', runtime: 'node' }), undefined);
    } finally {
      await p.close();
    }
  });
});
