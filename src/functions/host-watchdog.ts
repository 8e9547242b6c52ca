import { readFileSync } from "node:fs";

/** A host silent this long (it sends a heartbeat every second) is killed and restarted. */
const HOST_SILENCE_MS = 5000;
/** A host that does not say hello this long after it was started is killed and restarted. */
const HELLO_TIMEOUT_MS = 15_000;
/** The server's own check of a host's memory, a backstop to the host's self-check. */
const PARENT_MEMORY_FACTOR = 1.25;

/** What the watchdog needs to know of a running host. */
export interface HostState {
  pid: number;
  spawnedAt: number;
  /** Whether it said hello (is up inside its sandbox). */
  hello: boolean;
  ready: boolean;
  lastHeard: number;
  maxMemoryMb: number;
}

/**
 * Why a host must be killed, or undefined while it is fine: it never came up, it
 * went silent (a heartbeat comes every second), or it is over its memory limit (a
 * backstop: the host checks its own memory every 20 ms and leaves).
 */
export function hostProblem(h: HostState, now = Date.now()): string | undefined {
  if (!h.hello && now - h.spawnedAt > HELLO_TIMEOUT_MS) {
    return `did not start within ${HELLO_TIMEOUT_MS} ms`;
  }
  if (h.ready && now - h.lastHeard > HOST_SILENCE_MS) {
    return `stopped answering for ${now - h.lastHeard} ms`;
  }
  const rss = residentBytes(h.pid);
  if (rss !== undefined && rss > h.maxMemoryMb * 1048576 * PARENT_MEMORY_FACTOR) {
    return `went over its memory limit of ${h.maxMemoryMb} MB`;
  }
  return undefined;
}

/** Resident memory of a process from /proc (Linux); undefined where there is none. */
export function residentBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
