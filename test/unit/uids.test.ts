// Host-wide sandbox uids: two allocators stand for two Lamina processes (each
// block lock is held by its own helper process, so they contend exactly as two
// servers do), and a killed holder's block is reclaimed with its leftovers.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { BLOCK_SIZE, UID_FIRST, UidAllocator } from '../../src/sandbox/uids.js';
import { isAlive } from '../helpers/server.js';

const root = process.getuid?.() === 0;
const skip = root ? false : 'host-wide uid locks need root (/run/lamina)';

test('two allocators never hand out the same uid, even past one block', { skip }, async () => {
  const a = new UidAllocator();
  const b = new UidAllocator({ firstBlock: 0 });
  const c = new UidAllocator({ firstBlock: 0 });
  try {
    const fromA = new Set<number>();
    for (let i = 0; i < BLOCK_SIZE + 5; i++) fromA.add(await a.acquire());
    assert.equal(fromA.size, BLOCK_SIZE + 5, 'distinct within one allocator');
    assert.equal(a.heldBlocks().length, 2, 'a second block once the first is full');
    // Concurrent callers share the block being added.
    const fromB = await Promise.all(Array.from({ length: 50 }, () => b.acquire()));
    const fromC = await Promise.all(Array.from({ length: 50 }, () => c.acquire()));
    assert.equal(new Set(fromB).size, 50);
    assert.equal(b.heldBlocks().length, 1);
    for (const u of [...fromB, ...fromC]) assert.ok(!fromA.has(u), `uid ${u} handed out twice`);
    for (const u of fromC) assert.ok(!fromB.includes(u), `uid ${u} handed out twice`);
    assert.notDeepEqual(b.heldBlocks(), c.heldBlocks(), 'b and c asked for the same block first; only one got it');
    for (const u of [...fromA, ...fromB, ...fromC]) assert.ok(u >= UID_FIRST);
  } finally {
    a.close();
    b.close();
    c.close();
  }
});

test('a released uid is reused only after the others, and close() gives the block back', { skip }, async () => {
  const a = new UidAllocator();
  const first = await a.acquire();
  const second = await a.acquire();
  a.release(first);
  const third = await a.acquire();
  assert.notEqual(third, first, 'the just-released uid is not the next one');
  assert.notEqual(third, second);
  const block = a.heldBlocks()[0]!;
  a.close();
  // Another allocator can take the same block once the helper has let go.
  const b = new UidAllocator({ firstBlock: block });
  try {
    for (let i = 0; i < 100 && !b.heldBlocks().includes(block); i++) {
      b.close();
      await b.acquire();
      if (!b.heldBlocks().includes(block)) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(b.heldBlocks().includes(block), 'the closed block was taken again');
  } finally {
    b.close();
  }
});

test('a holder killed with SIGKILL: its block is reclaimed and its leftover sandbox killed', { skip }, async () => {
  // A child "server" takes a block and starts a "sandbox" under one of its uids that
  // does not die with it (no parent-death signal), then is killed.
  const script = `
    import { spawn } from 'node:child_process';
    import { UidAllocator } from './src/sandbox/uids.ts';
    const a = new UidAllocator();
    const uid = await a.acquire();
    const s = spawn('setpriv', ['--reuid=' + uid, '--regid=' + uid, '--clear-groups', '--', 'sleep', '300'], { stdio: 'ignore', detached: true });
    console.log(JSON.stringify({ block: a.heldBlocks()[0], uid, sandbox: s.pid }));
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'inherit'] });
  const info = await new Promise<{ block: number; uid: number; sandbox: number }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
    });
    child.once('exit', (code) => reject(new Error(`the holder exited early (${code})`)));
  });
  assert.ok(isAlive(info.sandbox));
  // setpriv changes its uid just after it starts: wait until it has (or give up after 10 s).
  const uidLine = new RegExp(`^Uid:\\s+${info.uid}\\b`, 'm');
  for (let i = 0; i < 200 && !uidLine.test(readFileSync(`/proc/${info.sandbox}/status`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(readFileSync(`/proc/${info.sandbox}/status`, 'utf8'), uidLine);

  // While the holder lives, its block is not handed out.
  const live = new UidAllocator({ firstBlock: info.block });
  try {
    await live.acquire();
    assert.ok(!live.heldBlocks().includes(info.block), 'a live holder keeps its block');
  } finally {
    live.close();
  }

  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  const next = new UidAllocator({ firstBlock: info.block });
  try {
    // The helper notices the dead holder as soon as its pipe closes; retry until it has.
    for (let i = 0; i < 200 && !next.heldBlocks().includes(info.block); i++) {
      next.close();
      await next.acquire();
      if (!next.heldBlocks().includes(info.block)) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(next.heldBlocks().includes(info.block), "the dead holder's block is reclaimed");
    for (let i = 0; i < 100 && isAlive(info.sandbox); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(!isAlive(info.sandbox), "the dead holder's leftover sandbox was killed");
  } finally {
    next.close();
    try {
      process.kill(info.sandbox, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});
