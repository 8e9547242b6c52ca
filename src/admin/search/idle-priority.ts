import { dlopen, FFIType } from "bun:ffi";
import { setThisThreadPolicy } from "../../thread-priority.ts";

/** Linux's SCHED_IDLE policy (sched.h). */
const SCHED_IDLE = 5;
/** setpriority's "which": a process, or on Linux the calling thread when `who` is 0. */
const PRIO_PROCESS = 0;

/**
 * Lowers the calling thread (not the process) to the idle scheduling class: it runs
 * only on CPU time nothing else wants. On Linux a scheduling policy and a nice value
 * belong to a thread, so the server's other threads keep theirs. Falls back to nice 19
 * where SCHED_IDLE is refused. Returns what it set, or "none" (not Linux, no glibc).
 */
export function idleThisThread(): "idle" | "nice" | "none" {
  if (process.platform !== "linux") return "none";
  try {
    if (setThisThreadPolicy(SCHED_IDLE)) return "idle";
    const { symbols } = dlopen("libc.so.6", {
      setpriority: { args: [FFIType.i32, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
    });
    return symbols.setpriority(PRIO_PROCESS, 0, 19) === 0 ? "nice" : "none";
  } catch {
    return "none";
  }
}
