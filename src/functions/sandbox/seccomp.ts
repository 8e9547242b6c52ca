import { ptr } from "bun:ffi";
import type { Libc } from "./libc.ts";
import { type SyscallName, type SyscallTable, syscallTable } from "./syscalls.ts";

/**
 * The seccomp filter of the function host (SPEC 7: user code cannot signal another
 * process, spawn one, or open a socket). Default allow, with these refused:
 * - new processes and programs: fork, vfork, execve, execveat, and clone without
 *   CLONE_THREAD (threads, which Bun's Workers need, are allowed); clone3 answers
 *   ENOSYS so libc falls back to clone, whose flags a filter can read;
 * - signals to anyone but this process: kill, tgkill and rt_(tg)sigqueueinfo only
 *   with this process's pid; tkill and pidfd signals not at all;
 * - reading or steering other processes: ptrace, process_vm_readv/writev, kcmp,
 *   process_madvise, pidfd_getfd;
 * - sockets of any kind: socket, socketpair, bind, listen, accept, connect (ctx.fetch
 *   is carried out by the server, see fetch-proxy.ts; the IPC channel to the server
 *   is inherited already connected);
 * - changing the system or this process's standing: namespaces, mounts, chroot,
 *   modules, kexec, reboot, swap, clocks, host names, keyrings, bpf, perf,
 *   userfaultfd, io_uring, uid/gid/capability changes, personality;
 * - changing file metadata Landlock does not cover: chmod, chown, xattrs, times,
 *   mknod, and opening files by handle;
 * - memory files (memfd_create, memfd_secret): their pages count in no resident size
 *   until mapped, so they would dodge the host's memory limit.
 */

const DENIED: SyscallName[] = [
  "fork",
  "vfork",
  "execve",
  "execveat",
  "tkill",
  "pidfd_open",
  "pidfd_send_signal",
  "pidfd_getfd",
  "ptrace",
  "process_vm_readv",
  "process_vm_writev",
  "kcmp",
  "process_madvise",
  "socket",
  "socketpair",
  "connect",
  "bind",
  "listen",
  "accept",
  "accept4",
  "unshare",
  "setns",
  "mount",
  "umount2",
  "pivot_root",
  "chroot",
  "open_tree",
  "move_mount",
  "fsopen",
  "fsconfig",
  "fsmount",
  "fspick",
  "mount_setattr",
  "open_tree_attr",
  "bpf",
  "perf_event_open",
  "userfaultfd",
  "io_uring_setup",
  "io_uring_enter",
  "io_uring_register",
  "keyctl",
  "add_key",
  "request_key",
  "init_module",
  "finit_module",
  "delete_module",
  "kexec_load",
  "kexec_file_load",
  "reboot",
  "swapon",
  "swapoff",
  "acct",
  "settimeofday",
  "clock_settime",
  "clock_adjtime",
  "adjtimex",
  "sethostname",
  "setdomainname",
  "iopl",
  "ioperm",
  "quotactl",
  "quotactl_fd",
  "lookup_dcookie",
  "personality",
  "syslog",
  "vhangup",
  "uselib",
  "modify_ldt",
  "setuid",
  "setgid",
  "setreuid",
  "setregid",
  "setresuid",
  "setresgid",
  "setgroups",
  "setfsuid",
  "setfsgid",
  "capset",
  "chmod",
  "fchmod",
  "fchmodat",
  "fchmodat2",
  "chown",
  "fchown",
  "lchown",
  "fchownat",
  "setxattr",
  "lsetxattr",
  "fsetxattr",
  "setxattrat",
  "removexattr",
  "lremovexattr",
  "fremovexattr",
  "removexattrat",
  "utime",
  "utimes",
  "utimensat",
  "futimesat",
  "mknod",
  "memfd_create",
  "memfd_secret",
  "mknodat",
  "open_by_handle_at",
  "name_to_handle_at",
];

/** Signals that name their target by pid as the first argument: allowed only to this process. */
const OWN_PID_ONLY: SyscallName[] = ["kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"];

const CLONE_THREAD = 0x10000;
const EPERM = 1;
const ENOSYS = 38;

// Classic BPF, as seccomp runs it.
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_KILL_PROCESS = 0x80000000;
const retErrno = (errno: number) => 0x00050000 | errno;
// Offsets in struct seccomp_data: nr, arch, then the arguments (64 bits each, little end first).
const NR = 0;
const ARCH = 4;
const ARG0_LOW = 16;

type Insn = [code: number, jt: number, jf: number, k: number];

/** The filter program for `table`, letting signals through to `ownPid` only. */
export function buildFilter(table: SyscallTable, ownPid: number): Insn[] {
  const n = table.numbers;
  const prog: Insn[] = [
    [LD_W_ABS, 0, 0, ARCH],
    // A call made under another architecture's numbering would dodge the table.
    [JEQ_K, 1, 0, table.auditArch],
    [RET_K, 0, 0, RET_KILL_PROCESS],
    [LD_W_ABS, 0, 0, NR],
  ];
  if (table.x32Bit !== undefined) {
    prog.push([JGE_K, 0, 1, table.x32Bit], [RET_K, 0, 0, retErrno(EPERM)]);
  }
  for (const name of DENIED) {
    const nr = n[name];
    if (nr !== undefined) prog.push([JEQ_K, 0, 1, nr], [RET_K, 0, 0, retErrno(EPERM)]);
  }
  if (n.clone3 !== undefined) prog.push([JEQ_K, 0, 1, n.clone3], [RET_K, 0, 0, retErrno(ENOSYS)]);
  if (n.clone !== undefined) {
    // clone(flags, …): a thread has CLONE_THREAD, a new process has not.
    prog.push(
      [JEQ_K, 0, 4, n.clone],
      [LD_W_ABS, 0, 0, ARG0_LOW],
      [JSET_K, 0, 1, CLONE_THREAD],
      [RET_K, 0, 0, RET_ALLOW],
      [RET_K, 0, 0, retErrno(EPERM)],
    );
  }
  for (const name of OWN_PID_ONLY) {
    const nr = n[name];
    if (nr === undefined) continue;
    prog.push(
      [JEQ_K, 0, 4, nr],
      [LD_W_ABS, 0, 0, ARG0_LOW],
      [JEQ_K, 0, 1, ownPid],
      [RET_K, 0, 0, RET_ALLOW],
      [RET_K, 0, 0, retErrno(EPERM)],
    );
  }
  prog.push([RET_K, 0, 0, RET_ALLOW]);
  return prog;
}

const SECCOMP_SET_MODE_FILTER = 1;
const SECCOMP_FILTER_FLAG_TSYNC = 1;
const PR_SET_NO_NEW_PRIVS = 38;

/**
 * Installs the filter on every thread of this process (TSYNC; threads started later
 * inherit it). Needs no_new_privs (set here; it is inherited and cannot be unset).
 * Returns undefined on success, else why not.
 */
export function installSeccomp(c: Libc, ownPid = process.pid): string | undefined {
  const table = syscallTable();
  if (!table) return `no seccomp table for the ${process.arch} architecture`;
  const nr = table.auditArch === 0xc000003e ? 317 : 277; // seccomp(2)
  const insns = buildFilter(table, ownPid);
  const filter = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, jt, jf, k], i) => {
    filter.writeUInt16LE(code, i * 8);
    filter.writeUInt8(jt, i * 8 + 2);
    filter.writeUInt8(jf, i * 8 + 3);
    filter.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
  const fprog = Buffer.alloc(16);
  fprog.writeUInt16LE(insns.length, 0);
  fprog.writeBigUInt64LE(BigInt(ptr(filter)), 8);
  if (c.prctl(PR_SET_NO_NEW_PRIVS, 1) !== 0)
    return `prctl(PR_SET_NO_NEW_PRIVS) failed (errno ${c.errno()})`;
  const rc = c.syscall(nr, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, ptr(fprog));
  void filter;
  if (rc === 0) return undefined;
  if (rc > 0) return `seccomp could not be applied to thread ${rc}`;
  return `seccomp(SECCOMP_SET_MODE_FILTER) failed (errno ${c.errno()})`;
}
