// Preloading (SOCK's import cache): after a deploy, the pool pre-starts a
// runtime that imported the version's dependencies, with the function's
// environment; the next cold start uses it. Process and container tiers
// (isolates bundle their dependencies instead).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { admin, deploy, invoke, sleep, startServer, testTiers, type TestServer } from '../helpers/server.js';
import { functionWithPackages, type FixturePackage } from './fixtures.js';

const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((c) => c()));

// Records when (process uptime, ms) and with which environment it was imported.
const STAMP: FixturePackage = {
  name: 'stamp',
  files: { 'index.js': 'exports.importedAt = process.uptime() * 1000; exports.greeting = process.env.GREETING;' },
};
const BROKEN: FixturePackage = { name: 'broken-at-import', files: { 'index.js': "throw new Error('no config');" } };

function fn(name: string, code: string, packages: FixturePackage[], manifest: Record<string, unknown>): string {
  const f = functionWithPackages({ name, files: { 'index.mjs': code }, packages, manifest });
  cleanups.push(f.remove);
  return f.dir;
}

const HANDLER = (v: string) => `import s from 'stamp';
const mine = process.uptime() * 1000;
export async function handler() { return { v: ${JSON.stringify(v)}, gap: mine - s.importedAt, greeting: s.greeting }; }`;

for (const tier of testTiers().filter((t) => t !== 'isolate')) {
  describe(`preloading [${tier}]`, () => {
    let s: TestServer;
    before(async () => {
      s = await startServer({ tier, env: { LAMINA_PRELOAD: '1' } });
    });
    after(async () => {
      await s.stop();
    });

    test('the first cold start after a deploy finds its dependencies imported, with the function\'s environment', async () => {
      await deploy(s, fn('pre', HANDLER('one'), [STAMP], { env: { GREETING: 'hi from the manifest' } }));
      await sleep(1500);
      const r = await invoke(s, 'pre', {});
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-lamina-cold-start'), '1');
      assert.equal(r.body.greeting, 'hi from the manifest', 'the dependency saw the manifest env at import');
      assert.ok(r.body.gap > 500, `the dependency was imported ${r.body.gap} ms before the function's own module (preloaded)`);
    });

    test('a redeploy preloads the new version; calls get the new version', async () => {
      await deploy(s, fn('pre', HANDLER('two'), [STAMP], { env: { GREETING: 'second' } }));
      await sleep(1500);
      // The warm instance of version 1 retired on the deploy: this is a cold start of version 2.
      const r = await invoke(s, 'pre', {});
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-lamina-version'), '2');
      assert.deepEqual([r.body.v, r.body.greeting], ['two', 'second']);
      assert.ok(r.body.gap > 500, `gap ${r.body.gap}`);
    });

    test('a dependency that throws at import fails the cold start as without preloading, and the server serves on', async () => {
      await deploy(s, fn('broken', "import b from 'broken-at-import';\nexport const handler = () => b;", [BROKEN], {}));
      await sleep(800);
      const r = await invoke(s, 'broken', {});
      assert.equal(r.status, 500, r.text);
      assert.equal(r.body.error.type, 'HandlerError');
      assert.match(r.body.error.message, /no config/);
      const ok = await invoke(s, 'pre', {});
      assert.equal(ok.status, 200, ok.text);
      assert.equal((await admin(s, 'DELETE', '/functions/broken')).status, 200);
    });
  });
}
