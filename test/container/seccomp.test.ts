// The hand-built seccomp program, checked by making the raw syscalls it should
// refuse. Node cannot make raw syscalls, so a host python3 (ctypes) runs them
// inside bwrap under the same program the container tier loads.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { CLONE_NAMESPACE_FLAGS, DENIED_SYSCALLS, SYSCALL_NUMBERS, seccompProgram } from '../../src/sandbox/container/seccomp.js';
import { hasBwrap } from './helpers.js';

test('the program is well formed', () => {
  const p = seccompProgram();
  assert.equal(p.length % 8, 0);
  assert.ok(p.length / 8 < 4096, 'under the kernel limit of 4096 instructions');
  // First instruction: load seccomp_data.arch (BPF_LD|BPF_W|BPF_ABS, k = 4).
  assert.equal(p.readUInt16LE(0), 0x20);
  assert.equal(p.readUInt32LE(4), 4);
  for (const s of DENIED_SYSCALLS) assert.ok(SYSCALL_NUMBERS.x64[s] !== undefined || ['nfsservctl'].includes(s), s);
});

const arch = process.arch === 'x64' ? 'x64' : process.arch === 'arm64' ? 'arm64' : undefined;
const python = '/usr/bin/python3';
const why = !hasBwrap() ? 'bubblewrap is not installed' : !existsSync(python) ? 'python3 is not installed' : !arch ? `no syscall table for ${process.arch}` : false;

test('denied syscalls fail with EPERM; ordinary ones (fork, threads) still work', { skip: why }, () => {
  const n = SYSCALL_NUMBERS[arch!];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lamina-seccomp-'));
  try {
    const script = `
import ctypes, os, threading, json
libc = ctypes.CDLL(None, use_errno=True)
def sc(*a):
    r = libc.syscall(*[ctypes.c_long(x) for x in a])
    return r if r >= 0 else -ctypes.get_errno()
out = {
  "getpid": sc(${arch === 'x64' ? 39 : 172}),
  "mount": sc(${n.mount}, 0, 0, 0, 0, 0),
  "umount2": sc(${n.umount2}, 0, 0),
  "ptrace": sc(${n.ptrace}, 0, 0, 0, 0),
  "unshare": sc(${n.unshare}, 0x10000000),
  "setns": sc(${n.setns}, 0, 0),
  "bpf": sc(${n.bpf}, 0, 0, 0),
  "keyctl": sc(${n.keyctl}, 0, 0, 0, 0, 0),
  "perf_event_open": sc(${n.perf_event_open}, 0, 0, 0, 0, 0),
  "userfaultfd": sc(${n.userfaultfd}, 0),
  "process_vm_readv": sc(${n.process_vm_readv}, 1, 0, 0, 0, 0, 0),
  "clone_newuser": sc(${n.clone}, ${CLONE_NAMESPACE_FLAGS & 0x10000000} | 17, 0, 0, 0, 0),
  "clone_newnet": sc(${n.clone}, 0x40000000 | 17, 0, 0, 0, 0),
  "clone3": sc(${n.clone3}, 0, 0),
  "personality_query": sc(${n.personality}, 0xffffffff),
  "personality_norandom": sc(${n.personality}, 0x0040000),
  "move_pages": sc(${n.move_pages}, 0, 0, 0, 0, 0, 0),
  "migrate_pages": sc(${n.migrate_pages}, 0, 0, 0, 0),
  "set_mempolicy": sc(${n.set_mempolicy}, 0, 0, 0),
  "mbind": sc(${n.mbind}, 0, 0, 0, 0, 0, 0),
  "memfd_secret": sc(${n.memfd_secret}, 0),
  "socket_vsock": sc(${n.socket}, 40, 1, 0),
  "socket_netlink_audit": sc(${n.socket}, 16, 3, 9),
  "socket_netlink_route": sc(${n.socket}, 16, 3, 0),
  "socket_unix": sc(${n.socket}, 1, 1, 0),
  ${arch === 'x64' ? `"x32_mount": sc(${n.mount} | 0x40000000, 0, 0, 0, 0, 0),` : ''}
}
pid = os.fork()
if pid == 0:
    os._exit(7)
out["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
t = threading.Thread(target=lambda: None); t.start(); t.join(); out["thread"] = 1
print(json.dumps(out))
`;
    writeFileSync(path.join(dir, 't.py'), script);
    writeFileSync(path.join(dir, 'prog.bpf'), seccompProgram());
    const fd = openSync(path.join(dir, 'prog.bpf'), 'r');
    const args = ['--unshare-all', '--die-with-parent', '--ro-bind', '/usr', '/usr', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/bin', '/bin', '--proc', '/proc', '--dev', '/dev', '--ro-bind', dir, '/t', '--seccomp', '3'];
    if (existsSync('/usr/lib64')) args.push('--symlink', 'usr/lib64', '/lib64');
    const r = spawnSync('bwrap', [...args, python, '/t/t.py'], { stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8', timeout: 20_000 });
    closeSync(fd);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, number>;
    const EPERM = -1;
    for (const k of ['mount', 'umount2', 'ptrace', 'unshare', 'setns', 'bpf', 'keyctl', 'perf_event_open', 'userfaultfd', 'process_vm_readv', 'clone_newuser', 'clone_newnet', 'personality_norandom', 'x32_mount',
      'move_pages', 'migrate_pages', 'set_mempolicy', 'mbind', 'memfd_secret', 'socket_vsock', 'socket_netlink_audit'])
      if (k in out) assert.equal(out[k], EPERM, `${k} -> ${out[k]}`);
    assert.equal(out.clone3, -38, 'clone3 -> ENOSYS, so libc falls back to clone');
    assert.ok(out.getpid! > 0);
    assert.ok(out.personality_query! >= 0);
    assert.ok(out.socket_netlink_route! >= 0, `netlink route sockets still open (${out.socket_netlink_route})`);
    assert.ok(out.socket_unix! >= 0, `unix sockets still open (${out.socket_unix})`);
    assert.equal(out.fork, 7);
    assert.equal(out.thread, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
