import { dlopen, FFIType, ptr } from "bun:ffi";
import { readdirSync, readFileSync } from "node:fs";

/**
 * Threads the engine and the allocator start for background work, by their names:
 * JavaScriptCore's JIT compilers and its warm-up thread, and mimalloc's scavenger (which
 * returns freed memory to the kernel).
 */
export const BACKGROUND_THREADS: readonly string[] = ["JITWorker", "JSCWarmUp", "mi-scavenger"];
/** Their nice value: about a tenth of the CPU against the event loop when both want it. */
export const BACKGROUND_NICE = 10;
/** How often threads started since (the JIT's come and go) are looked for. */
const RESCAN_MS = 1000;
/** setpriority's "which": on Linux, with a thread id as `who`, that one thread. */
const PRIO_PROCESS = 0;

/**
 * Gives the process's background threads (BACKGROUND_THREADS) a lower priority than the
 * event loop, now and every second for those started later, until `stop`.
 *
 * On a server pinned to one core (bench/run.ts's rows) every thread of the process takes
 * turns with the event loop, and at equal priority a JIT compilation of several
 * milliseconds, woken just before a burst of requests, delays all of them: at the
 * "half max" row the event loop's stalls while a JIT thread ran were 4–7% of the
 * answers slower than 5 ms (bench/RESULTS.md, "Fifth session: the tail at half rate").
 * Niced, those threads still get the CPU the event loop leaves, and a tenth of it while
 * the loop is busy, so compilation is not starved at full speed. On Linux a nice value
 * belongs to a thread, so nothing else of the process changes. Does nothing where
 * /proc/self/task or glibc's setpriority is missing.
 */
export function lowerBackgroundThreads(
  names: readonly string[] = BACKGROUND_THREADS,
  nice = BACKGROUND_NICE,
): { stop(): void } {
  if (process.platform !== "linux") return { stop() {} };
  let setpriority: (which: number, who: number, prio: number) => number;
  try {
    const lib = dlopen("libc.so.6", {
      setpriority: { args: [FFIType.i32, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
    });
    setpriority = lib.symbols.setpriority;
  } catch {
    return { stop() {} };
  }
  const wanted = new Set(names);
  const scan = () => {
    let tids: string[];
    try {
      tids = readdirSync("/proc/self/task");
    } catch {
      return;
    }
    for (const tid of tids) {
      try {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, "latin1");
        const close = stat.lastIndexOf(")");
        const name = stat.slice(stat.indexOf("(") + 1, close);
        // Fields after the name: state is the first, nice the 17th (stat field 19).
        const current = Number(stat.slice(close + 2).split(" ")[16]);
        if (wanted.has(name) && current < nice) setpriority(PRIO_PROCESS, Number(tid), nice);
      } catch {
        // the thread ended meanwhile
      }
    }
  };
  scan();
  const timer = setInterval(scan, RESCAN_MS);
  timer.unref?.();
  return { stop: () => clearInterval(timer) };
}

/** Linux's SCHED_BATCH policy (sched.h). */
const SCHED_BATCH = 3;

/**
 * Puts the calling thread (not the process) in Linux's batch scheduling class: it keeps
 * its full share of the CPU, but its wake-ups do not preempt the thread that is running,
 * and the scheduler takes it for CPU-bound. For the dedup writer thread: on a core it
 * shares with the event loop (one core, or more threads than cores) it then seldom
 * takes the core from a request, while still writing as fast as at normal priority.
 * SCHED_IDLE would starve it under full load (batch-500 pinned: 43k against 97k
 * events/s, ingest stalled on the writer's backlog); see bench/RESULTS.md, "Sixth
 * session on a quiet machine". Any thread may move itself there without privileges.
 * Returns whether it did (false: not Linux, no glibc, refused).
 */
export function batchThisThread(): boolean {
  return setThisThreadPolicy(SCHED_BATCH);
}

/**
 * Sets the calling thread's scheduling policy (sched.h's number, priority 0); whether it
 * did (false: not Linux, no glibc, refused). Also for idle-priority.ts.
 */
export function setThisThreadPolicy(policy: number): boolean {
  if (process.platform !== "linux") return false;
  try {
    const { symbols } = dlopen("libc.so.6", {
      sched_setscheduler: { args: [FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    });
    const param = new Int32Array(1); // struct sched_param { int sched_priority = 0 }
    return symbols.sched_setscheduler(0, policy, ptr(param)) === 0;
  } catch {
    return false;
  }
}
