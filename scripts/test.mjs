// Runs every test file under test/ with Node's own runner (Node 20's --test does
// not expand globs itself). Extra arguments are passed to the runner, e.g.
// `npm test -- --test-name-pattern=billing`.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return find(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const files = find('test').sort();
const args = ['--test', '--test-concurrency=1', '--import', 'tsx', ...process.argv.slice(2), ...files];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
