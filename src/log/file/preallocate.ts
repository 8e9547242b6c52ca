import { dlopen, FFIType, read } from "bun:ffi";

/**
 * Reserves a new segment's blocks up front with fallocate(2) (Linux, glibc, through
 * bun:ffi), so that a group commit's synchronous write lands inside the file instead of
 * growing it: the file size, and so the metadata the sync must also commit, no longer
 * changes with each write (bench/RESULTS.md, "Segment preallocation"). Only metadata
 * is written; the file reads as zeros past its records, which readers take as the end.
 */
type Fallocate = (fd: number, bytes: number) => number;

const ENOSYS = 38;
const EOPNOTSUPP = 95;

let bound: { fallocate: Fallocate; errno: () => number } | null | undefined;

function bind() {
  if (bound !== undefined) return bound;
  bound = null;
  if (process.platform !== "linux") return bound;
  try {
    const lib = dlopen("libc.so.6", {
      fallocate: {
        args: [FFIType.i32, FFIType.i32, FFIType.i64, FFIType.i64],
        returns: FFIType.i32,
      },
      __errno_location: { args: [], returns: FFIType.ptr },
    });
    const s = lib.symbols;
    bound = {
      fallocate: (fd, bytes) => s.fallocate(fd, 0, 0n, BigInt(bytes)),
      errno: () => read.i32(s.__errno_location()!, 0),
    };
  } catch {
    bound = null; // no glibc: segments grow as they are written
  }
  return bound;
}

/**
 * Allocates `bytes` for the file open as `fd` (its size becomes at least `bytes`).
 * Returns false where the platform or file system cannot (segments then grow as they
 * are written); throws on a real failure such as a full disk (ENOSPC).
 */
export function preallocate(fd: number, bytes: number): boolean {
  const lib = bind();
  if (!lib) return false;
  if (lib.fallocate(fd, bytes) === 0) return true;
  const errno = lib.errno();
  if (errno === EOPNOTSUPP || errno === ENOSYS) return false;
  const err = new Error(
    `fallocate of a new segment failed (errno ${errno})`,
  ) as NodeJS.ErrnoException;
  err.errno = errno;
  if (errno === 28) err.code = "ENOSPC";
  throw err;
}
