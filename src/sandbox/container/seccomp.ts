// A classic-BPF seccomp program, built here because Node has no libseccomp
// binding; bwrap loads it (`--seccomp FD`) right before it execs the runtime.
// Policy: a deny list (default allow), since Node needs a wide syscall surface.
// Denied calls fail with EPERM, so the runtime sees an ordinary error; a foreign
// architecture (e.g. i386 via int 0x80, which renumbers every syscall) is killed.

/** struct seccomp_data offsets: nr (u32), arch (u32), instruction_pointer (u64), args[6] (u64 each). */
const OFF_NR = 0;
const OFF_ARCH = 4;
const OFF_ARG0_LO = 16;
const OFF_ARG2_LO = 32;

// BPF opcodes (linux/filter.h).
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;

const RET_KILL_PROCESS = 0x80000000;
const RET_ERRNO = 0x00050000;
const RET_ALLOW = 0x7fff0000;
const EPERM = 1;
const ENOSYS = 38;

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_AARCH64 = 0xc00000b7;
/** x32 syscalls carry this bit under the x86_64 arch tag; refuse them all. */
const X32_SYSCALL_BIT = 0x40000000;

/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME. */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080;
/** personality() values that only query or are harmless (Docker's default profile allows the same). */
const PERSONALITY_ALLOWED = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** Syscalls refused with EPERM: namespace/mount escapes, tracing, kernel (module, key, bpf, perf) surface, clock and host admin. */
export const DENIED_SYSCALLS = [
  'mount', 'umount2', 'pivot_root', 'chroot', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr',
  'unshare', 'setns',
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp',
  'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'reboot', 'swapon', 'swapoff', 'acct', 'quotactl', 'vhangup', 'syslog', 'lookup_dcookie',
  'bpf', 'perf_event_open', 'userfaultfd', 'keyctl', 'add_key', 'request_key',
  'open_by_handle_at', 'name_to_handle_at',
  'settimeofday', 'clock_settime', 'adjtimex', 'clock_adjtime',
  'io_uring_setup', 'io_uring_enter', 'io_uring_register',
  'iopl', 'ioperm', 'uselib', '_sysctl', 'nfsservctl',
  // NUMA placement and secret memory: host memory policy and pages no one can inspect (Docker denies them too).
  'move_pages', 'migrate_pages', 'set_mempolicy', 'mbind', 'memfd_secret',
] as const;

/** Socket families refused outright: AF_VSOCK reaches the hypervisor and other VMs, which no network namespace confines. */
const AF_VSOCK = 40;
/** AF_NETLINK is allowed (Node and libc query their own interfaces through it) except the audit protocol. */
const AF_NETLINK = 16;
const NETLINK_AUDIT = 9;

type Syscall = (typeof DENIED_SYSCALLS)[number] | 'clone' | 'clone3' | 'personality' | 'socket';

/** Numbers from the kernel's unistd headers; a syscall missing on an arch is left out. */
export const SYSCALL_NUMBERS: Record<'x64' | 'arm64', Partial<Record<Syscall, number>>> = {
  x64: {
    mount: 165, umount2: 166, pivot_root: 155, chroot: 161, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, move_mount: 429, open_tree: 428, mount_setattr: 442,
    unshare: 272, setns: 308,
    ptrace: 101, process_vm_readv: 310, process_vm_writev: 311, kcmp: 312,
    kexec_load: 246, kexec_file_load: 320, init_module: 175, finit_module: 313, delete_module: 176, reboot: 169, swapon: 167, swapoff: 168, acct: 163, quotactl: 179, vhangup: 153, syslog: 103, lookup_dcookie: 212,
    bpf: 321, perf_event_open: 298, userfaultfd: 323, keyctl: 250, add_key: 248, request_key: 249,
    open_by_handle_at: 304, name_to_handle_at: 303,
    settimeofday: 164, clock_settime: 227, adjtimex: 159, clock_adjtime: 305,
    io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427,
    iopl: 172, ioperm: 173, uselib: 134, _sysctl: 156, nfsservctl: 180,
    move_pages: 279, migrate_pages: 256, set_mempolicy: 238, mbind: 237, memfd_secret: 447,
    clone: 56, clone3: 435, personality: 135, socket: 41,
  },
  arm64: {
    mount: 40, umount2: 39, pivot_root: 41, chroot: 51, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, move_mount: 429, open_tree: 428, mount_setattr: 442,
    unshare: 97, setns: 268,
    ptrace: 117, process_vm_readv: 270, process_vm_writev: 271, kcmp: 272,
    kexec_load: 104, kexec_file_load: 294, init_module: 105, finit_module: 273, delete_module: 106, reboot: 142, swapon: 224, swapoff: 225, acct: 89, quotactl: 60, vhangup: 58, syslog: 116, lookup_dcookie: 18,
    bpf: 280, perf_event_open: 241, userfaultfd: 282, keyctl: 219, add_key: 217, request_key: 218,
    open_by_handle_at: 265, name_to_handle_at: 264,
    settimeofday: 170, clock_settime: 112, adjtimex: 171, clock_adjtime: 266,
    io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427,
    nfsservctl: 42,
    move_pages: 239, migrate_pages: 238, set_mempolicy: 237, mbind: 235, memfd_secret: 447,
    clone: 220, clone3: 435, personality: 92, socket: 198,
  },
};

// A tiny assembler: instructions with symbolic jump targets, resolved to the
// relative u8 offsets classic BPF wants once the program is laid out.
type Ins = { code: number; k: number; jt?: string; jf?: string } | { label: string };

function assemble(prog: Ins[]): Buffer {
  const labels = new Map<string, number>();
  const code: Exclude<Ins, { label: string }>[] = [];
  for (const i of prog) {
    if ('label' in i) labels.set(i.label, code.length);
    else code.push(i);
  }
  const out = Buffer.alloc(code.length * 8);
  code.forEach((ins, pc) => {
    const rel = (l: string | undefined): number => {
      if (l === undefined) return 0;
      const target = labels.get(l);
      if (target === undefined) throw new Error(`seccomp: unknown label ${l}`);
      const off = target - pc - 1;
      if (off < 0 || off > 255) throw new Error(`seccomp: jump to ${l} out of range`);
      return off;
    };
    // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; } in host byte order (both arches are little-endian).
    out.writeUInt16LE(ins.code, pc * 8);
    out.writeUInt8(rel(ins.jt), pc * 8 + 2);
    out.writeUInt8(rel(ins.jf), pc * 8 + 3);
    out.writeUInt32LE(ins.k >>> 0, pc * 8 + 4);
  });
  return out;
}

function archBlock(name: 'x64' | 'arm64'): Ins[] {
  const nr = SYSCALL_NUMBERS[name];
  const p: Ins[] = [{ label: name }, { code: LD_W_ABS, k: OFF_NR }];
  if (name === 'x64') p.push({ code: JGE_K, k: X32_SYSCALL_BIT, jt: 'eperm' });
  for (const s of DENIED_SYSCALLS) {
    const n = nr[s];
    if (n !== undefined) p.push({ code: JEQ_K, k: n, jt: 'eperm' });
  }
  // clone3 passes its flags in a struct the filter cannot read: ENOSYS makes glibc fall back to clone.
  p.push({ code: JEQ_K, k: nr.clone3!, jt: 'enosys' });
  p.push({ code: JEQ_K, k: nr.personality!, jt: `${name}_personality` });
  p.push({ code: JEQ_K, k: nr.socket!, jt: `${name}_socket` });
  p.push({ code: JEQ_K, k: nr.clone!, jf: 'allow' });
  // clone(flags, ...): flags is args[0] on both arches; refuse any new namespace.
  p.push({ code: LD_W_ABS, k: OFF_ARG0_LO }, { code: JSET_K, k: CLONE_NAMESPACE_FLAGS, jt: 'eperm', jf: 'allow' });
  p.push({ label: `${name}_personality` }, { code: LD_W_ABS, k: OFF_ARG0_LO });
  for (const v of PERSONALITY_ALLOWED) p.push({ code: JEQ_K, k: v, jt: 'allow' });
  p.push({ code: RET_K, k: RET_ERRNO | EPERM });
  // socket(domain, type, protocol): no vsock; netlink but not its audit protocol.
  p.push({ label: `${name}_socket` }, { code: LD_W_ABS, k: OFF_ARG0_LO });
  p.push({ code: JEQ_K, k: AF_VSOCK, jt: 'eperm' });
  p.push({ code: JEQ_K, k: AF_NETLINK, jf: 'allow' });
  p.push({ code: LD_W_ABS, k: OFF_ARG2_LO }, { code: JEQ_K, k: NETLINK_AUDIT, jt: 'eperm', jf: 'allow' });
  return p;
}

/** The compiled filter (an array of struct sock_filter), as bwrap's --seccomp reads it. */
export function seccompProgram(): Buffer {
  return assemble([
    { code: LD_W_ABS, k: OFF_ARCH },
    { code: JEQ_K, k: AUDIT_ARCH_X86_64, jt: 'x64' },
    { code: JEQ_K, k: AUDIT_ARCH_AARCH64, jt: 'arm64' },
    { code: RET_K, k: RET_KILL_PROCESS },
    ...archBlock('x64'),
    ...archBlock('arm64'),
    { label: 'eperm' },
    { code: RET_K, k: RET_ERRNO | EPERM },
    { label: 'enosys' },
    { code: RET_K, k: RET_ERRNO | ENOSYS },
    { label: 'allow' },
    { code: RET_K, k: RET_ALLOW },
  ]);
}
