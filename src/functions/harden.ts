import { dlopen, FFIType } from "bun:ffi";

const PR_GET_DUMPABLE = 3;
const PR_SET_DUMPABLE = 4;

function prctl(): ((option: number) => number) | undefined {
  if (process.platform !== "linux") return undefined;
  try {
    const libc = dlopen("libc.so.6", {
      prctl: {
        args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64],
        returns: FFIType.i32,
      },
    });
    return (option) => libc.symbols.prctl(option, 0n, 0n, 0n, 0n);
  } catch {
    return undefined; // not glibc: nothing to do
  }
}

/**
 * Marks the server process non-dumpable before user code starts beside it. The
 * function host runs as the same user, and without this it could read the server's
 * environment (`/proc/<pid>/environ`) and memory maps; non-dumpable makes those
 * files root's. (Root itself can still read them: run sluice as a normal user.)
 * Returns whether the process is now non-dumpable.
 */
export function hideServerFromFunctions(): boolean {
  const call = prctl();
  if (!call) return false;
  call(PR_SET_DUMPABLE);
  return call(PR_GET_DUMPABLE) === 0;
}
