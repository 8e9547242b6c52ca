import { dlopen, FFIType, ptr } from "bun:ffi";

/**
 * The allocator settings `sluice serve` runs with. Bun's allocator (mimalloc) reads
 * its options from the environment once, when the process starts; setting
 * `process.env` later has no effect, and Bun exports no call to change them. So when
 * `sluice serve` starts without them, it replaces itself with the same program, the
 * same arguments and these variables added (execve(2) through bun:ffi, before any
 * other module runs): the same process id, stdin/stdout/stderr and signals, so
 * systemd, Docker (PID 1) and shells see nothing of it. A variable the user set is
 * never overridden (set it to mimalloc's default to opt out).
 *
 * `MIMALLOC_PURGE_HOLES_MIN_INTERVAL=1000`: the allocator's scavenger thread returns the
 * free holes inside partly used pages to the kernel at most once a second instead of
 * every 100 ms (madvise, then page faults when the event loop uses them again). At the
 * "half max" row that thread took 30–40 µs of CPU per single event (6–10% of a core,
 * beside a request's ~90 µs on the event loop, on the same core); with the interval,
 * 12–13 µs (2–4%). Memory freed after a burst still goes back as before, and idle RSS is
 * unchanged; `MIMALLOC_PURGE_HOLES=0` saved a little more CPU but kept 5 MB more at idle
 * and 30–50 MB more after a burst (bench/RESULTS.md, "Issue 11: commit cost and
 * allocator (third session)").
 */
export const ALLOCATOR_ENV: Record<string, string> = { MIMALLOC_PURGE_HOLES_MIN_INTERVAL: "1000" };

/** Marks a process this module re-executed, so that a failed exec is never retried in a loop. */
const MARK = "SLUICE_ALLOCATOR_ENV";

/**
 * Re-executes this process with ALLOCATOR_ENV when `sluice serve` starts without it.
 * Returns only if nothing was to be done or the exec failed (then sluice runs with the
 * allocator's defaults: slower at low load, otherwise the same).
 */
export function applyAllocatorEnv(argv: string[] = process.argv): void {
  if (process.platform !== "linux" || process.env[MARK] !== undefined) return;
  // Only the server: the CLI's other commands are short-lived.
  if (!argv.slice(2).includes("serve")) return;
  const missing = Object.entries(ALLOCATOR_ENV).filter(([k]) => process.env[k] === undefined);
  if (missing.length === 0) return;
  // A compiled binary's argv[1] is its own bundled entry (/$bunfs/...), not a file to run.
  const compiled = Bun.main.startsWith("/$bunfs/");
  const args = compiled
    ? [process.execPath, ...argv.slice(2)]
    : [process.execPath, ...process.execArgv, ...argv.slice(1)];
  const env: Record<string, string | undefined> = { ...process.env, [MARK]: "1" };
  for (const [k, v] of missing) env[k] = v;
  try {
    const lib = dlopen("libc.so.6", {
      execve: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    });
    const keep: Buffer[] = [];
    const cString = (s: string) => {
      const b = Buffer.from(`${s}\0`, "utf8");
      keep.push(b);
      return b;
    };
    const vector = (strings: string[]) => {
      const v = new BigUint64Array(strings.length + 1); // NULL-terminated
      strings.forEach((s, i) => {
        v[i] = BigInt(ptr(cString(s)));
      });
      return v;
    };
    const envStrings = Object.entries(env)
      .filter((e): e is [string, string] => e[1] !== undefined)
      .map(([k, v]) => `${k}=${v}`);
    // Returns only on failure (the process image is replaced otherwise).
    lib.symbols.execve(ptr(cString(process.execPath)), ptr(vector(args)), ptr(vector(envStrings)));
  } catch {
    // no glibc (musl) or no FFI: run as started
  }
}
