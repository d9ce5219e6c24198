// Compiling a function reads nothing outside its directory: tsconfig.json
// lookup and `extends`, sourceMappingURL comments and imports cannot bring a
// host file (here a stand-in for the admin token) into the deploy's answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LaminaError } from '../../src/errors.js';
import { compileFunction } from '../../src/registry/compile.js';
import { listFiles } from '../../src/registry/files.js';
import { parseManifest } from '../../src/registry/manifest.js';
import { fnDir, tempDir } from './helpers.js';

const SECRET = 'lamina-admin-token-7f3c9a1b2d';
const secretDir = tempDir('lamina-secret-');
const tokenFile = path.join(secretDir, 'token');
fs.writeFileSync(tokenFile, `${SECRET}\n`);

async function compile(files: Record<string, string>, manifest: Record<string, unknown> = {}, parent?: string) {
  const src = parent ? path.join(parent, 'fn') : fnDir('fn', files);
  if (parent) {
    fs.mkdirSync(src);
    for (const [rel, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
      fs.writeFileSync(path.join(src, rel), content);
    }
  }
  const listed = await listFiles(src, { skipIgnored: true });
  const m = parseManifest(manifest, { dirName: 'fn', files: listed });
  const out = tempDir('lamina-out-');
  const { codeEntry } = await compileFunction(src, m, listed, out);
  return { out, codeEntry };
}

/** The compile fails, with a message that does not carry the secret. */
async function refusedWithoutLeak(p: Promise<unknown>, pattern?: RegExp): Promise<string> {
  let message = '';
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof LaminaError, String(err));
    assert.equal(err.type, 'InvalidFunction');
    message = err.message;
    return true;
  });
  assert.ok(!message.includes(SECRET), `the message leaks the file: ${message}`);
  if (pattern) assert.match(message, pattern);
  return message;
}

const TS_HANDLER = 'export const handler = async (e: unknown) => ({ ok: true });';

for (const sandbox of ['process', 'isolate'] as const) {
  test(`${sandbox} build: a tsconfig.json extending a host file is refused without its contents`, async () => {
    await refusedWithoutLeak(
      compile({ 'index.ts': TS_HANDLER, 'tsconfig.json': JSON.stringify({ extends: tokenFile }) }, { sandbox }),
      /extends .*only relative paths inside the function directory/,
    );
    await refusedWithoutLeak(
      compile({ 'index.ts': TS_HANDLER, 'tsconfig.json': JSON.stringify({ extends: path.relative('/x', tokenFile).replace(/^/, '../../../../../../../../') }) }, { sandbox }),
      /not in the function directory/,
    );
  });

  test(`${sandbox} build: a sourceMappingURL naming a host file is not read`, async () => {
    const rel = path.relative('/', tokenFile);
    for (const url of [tokenFile, pathToFileURL(tokenFile).href, `../../../../../../../../../${rel}`]) {
      const { out, codeEntry } = await compile({
        'index.js': `export const handler = async () => 1;\n//# sourceMappingURL=${url}\n`,
        'lib.ts': `export const x = 1;\n/*# sourceMappingURL=${url} */\n`,
      }, { sandbox });
      assert.ok(!fs.readFileSync(path.join(out, codeEntry), 'utf8').includes(SECRET));
    }
  });
}

test('a tsconfig.json in a parent directory of the function is not read', async () => {
  const parent = tempDir('lamina-parent-');
  fs.writeFileSync(path.join(parent, 'tsconfig.json'), JSON.stringify({ extends: tokenFile }));
  const { out, codeEntry } = await compile({ 'index.ts': TS_HANDLER }, {}, parent);
  assert.ok(fs.existsSync(path.join(out, codeEntry)));
});

test("the function's own tsconfig.json still applies, comments, trailing commas and relative extends included", async () => {
  const { out, codeEntry } = await compile({
    'index.ts': "import { view } from './view.tsx';\nexport const handler = async () => view;",
    'view.tsx': 'export const view = () => <b />;',
    'base/tsconfig.base.json': '{ // shared\n "compilerOptions": { "jsx": "react", "jsxFactory": "h", }, }',
    'tsconfig.json': '{ "extends": "./base/tsconfig.base", /* own */ "compilerOptions": { "jsxFactory": "myH" } }',
  });
  const code = fs.readFileSync(path.join(out, codeEntry), 'utf8');
  assert.match(code, /myH\("b"/, 'the own jsxFactory overrides the base one');
});

test('a broken or self-extending tsconfig.json fails the compile with a clear message', async () => {
  await refusedWithoutLeak(compile({ 'index.ts': TS_HANDLER, 'tsconfig.json': '{ "compilerOptions": ' }), /tsconfig\.json: .* at offset/);
  await refusedWithoutLeak(compile({ 'index.ts': TS_HANDLER, 'tsconfig.json': '{ "extends": "./tsconfig.json" }' }), /extends itself/);
});

test('an import of the host file is refused by path, never by contents', async () => {
  await refusedWithoutLeak(
    compile({ 'index.ts': `import t from ${JSON.stringify(tokenFile)};\nexport const handler = async () => t;` }),
    /outside the function directory/,
  );
});
