// `lamina dev`: starts a server when none answers, deploys, serves an edit
// soon after the save, streams the calls' logs, and cleans up on Ctrl-C.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { CLI, call, sleep } from '../helpers/server.js';

function waitFor(get: () => string, re: RegExp): Promise<RegExpExecArray> {
  return (async () => {
    for (;;) {
      const m = re.exec(get());
      if (m) return m;
      await sleep(25);
    }
  })();
}

test('lamina dev: deploy, redeploy on save, logs, Ctrl-C stops the server it started', async (t) => {
  const base = mkdtempSync(path.join(os.tmpdir(), 'lamina-devfn-'));
  const dir = path.join(base, 'devfn');
  const write = (v: string) => writeFileSync(path.join(dir, 'index.mjs'), `export async function handler() { console.log("serving ${v}"); return "${v}"; }\n`);
  try {
    mkdirSync(dir);
    write('one');
    // Nothing listens on port 1: dev starts its own server.
    const child = spawn(process.execPath, [CLI, 'dev', dir, '--sandbox', 'process'], {
      env: { ...process.env, LAMINA_URL: 'http://127.0.0.1:1', LAMINA_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let dataDir: string | undefined;
    try {
      const [, fnUrl] = await waitFor(() => out, /^(http:\/\/127\.0\.0\.1:\d+\/run\/devfn)$/m);
      dataDir = /started a server at http:\/\/127\.0\.0\.1:\d+ \(sandbox process; data dir (\S+);/.exec(out)?.[1];
      assert.ok(dataDir && existsSync(dataDir), out);
      assert.match(out, /deployed devfn version 1/);
      const first = await call(fnUrl!, { method: 'POST' });
      assert.equal(first.body, 'one');
      const id = first.headers.get('x-lamina-request-id')!;
      await waitFor(() => out, new RegExp(`REPORT RequestId: ${id}`));
      assert.match(out, /serving one/);

      const saved = Date.now();
      write('two');
      // Poll until the edit is served (the bound is the test runner's; the time it took is reported).
      for (;;) {
        const r = await call(fnUrl!, { method: 'POST' });
        if (r.body === 'two') break;
        await sleep(20);
      }
      const served = Date.now() - saved;
      // The line reaches our pipe after the deploy it reports, and may trail the first answer from it on a busy machine.
      await waitFor(() => out, /deployed devfn version 2/);
      t.diagnostic(`edit served ${served} ms after the save (${/deployed devfn version 2 in \d+ ms/.exec(out)?.[0]})`);

      // A broken save keeps the last good version serving.
      writeFileSync(path.join(dir, 'lamina.json'), '{"memoryMb": "lots"}');
      await waitFor(() => out, /deploy failed: .*memoryMb/);
      assert.equal((await call(fnUrl!, { method: 'POST' })).body, 'two');
    } finally {
      child.kill('SIGINT');
      assert.equal(await exited, 0, out);
    }
    assert.equal(existsSync(dataDir!), false, 'the data dir it made is gone');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
