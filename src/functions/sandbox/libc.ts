import { dlopen, FFIType, type Pointer, ptr, read } from "bun:ffi";

/**
 * The few libc calls the sandbox needs (Linux, glibc), through bun:ffi. Undefined
 * where there is no such libc: the sandbox then reports every layer as missing.
 */
export interface Libc {
  /** A raw system call; returns -1 and sets errno on failure (see `errno`). */
  syscall(nr: number, ...args: (number | bigint | Pointer)[]): number;
  prctl(option: number, arg2?: number): number;
  /** errno of the last failed call on this thread. */
  errno(): number;
  setgroups(): number;
  setresgid(gid: number): number;
  setresuid(uid: number): number;
  unshare(flags: number): number;
  /** Opens `path` with `flags` (O_PATH for Landlock rules). */
  open(path: string, flags: number): number;
  close(fd: number): number;
  /**
   * Replaces this process with the program open as `fd` (execveat with AT_EMPTY_PATH):
   * the program was opened before this process gave up root, so its path need not be
   * open to the user it runs as now. Returns only on failure.
   */
  execFd(fd: number, argv: string[], env: string[]): number;
}

let cached: Libc | null | undefined;

/** The bindings, or undefined when libc.so.6 cannot be opened (not Linux, not glibc). */
export function libc(): Libc | undefined {
  if (cached !== undefined) return cached ?? undefined;
  cached = null;
  if (process.platform !== "linux") return undefined;
  try {
    cached = bind();
  } catch {
    cached = null;
  }
  return cached ?? undefined;
}

function bind(): Libc {
  const i64 = FFIType.i64;
  const lib = dlopen("libc.so.6", {
    syscall: { args: [i64, i64, i64, i64, i64, i64], returns: i64 },
    prctl: {
      args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64],
      returns: FFIType.i32,
    },
    __errno_location: { args: [], returns: FFIType.ptr },
    setgroups: { args: [FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
    setresgid: { args: [FFIType.u32, FFIType.u32, FFIType.u32], returns: FFIType.i32 },
    setresuid: { args: [FFIType.u32, FFIType.u32, FFIType.u32], returns: FFIType.i32 },
    unshare: { args: [FFIType.i32], returns: FFIType.i32 },
    open: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
  });
  const s = lib.symbols;
  const word = (v: number | bigint | Pointer) => (typeof v === "bigint" ? v : BigInt(v as number));
  return {
    syscall(nr, ...args) {
      const a = [...args.map(word), 0n, 0n, 0n, 0n, 0n].slice(0, 5);
      return Number(s.syscall(BigInt(nr), a[0]!, a[1]!, a[2]!, a[3]!, a[4]!));
    },
    prctl: (option, arg2 = 0) => s.prctl(option, BigInt(arg2), 0n, 0n, 0n),
    errno: () => read.i32(s.__errno_location()!, 0),
    setgroups: () => s.setgroups(0n, null),
    setresgid: (gid) => s.setresgid(gid, gid, gid),
    setresuid: (uid) => s.setresuid(uid, uid, uid),
    unshare: (flags) => s.unshare(flags),
    open: (path, flags) => s.open(ptr(cString(path)), flags),
    close: (fd) => s.close(fd),
    execFd(fd, argv, env) {
      // The strings must stay alive (referenced) until the kernel has copied them.
      const strings = ["", ...argv, ...env].map(cString);
      const vector = (from: number, n: number) => {
        const v = new BigUint64Array(n + 1);
        for (let i = 0; i < n; i++) v[i] = BigInt(ptr(strings[from + i]!));
        return v;
      };
      const argvPtrs = vector(1, argv.length);
      const envPtrs = vector(1 + argv.length, env.length);
      const nr = process.arch === "arm64" ? 281 : 322;
      const AT_EMPTY_PATH = 0x1000;
      const rc = Number(
        s.syscall(
          BigInt(nr),
          BigInt(fd),
          BigInt(ptr(strings[0]!)),
          BigInt(ptr(argvPtrs)),
          BigInt(ptr(envPtrs)),
          BigInt(AT_EMPTY_PATH),
        ),
      );
      void [strings, argvPtrs, envPtrs];
      return rc;
    },
  };
}

function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`);
}
