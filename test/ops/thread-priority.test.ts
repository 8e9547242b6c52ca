import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { BACKGROUND_NICE } from "../../src/thread-priority.ts";
import { cleanedAfterEach, exitCode } from "../support/process.ts";
import { makeTestConfig } from "../support/server.ts";

// `sluice serve` lowers the JIT's and the allocator's background threads below the event
// loop (thread-priority.ts); the event loop and the rest keep their priority.

const { dirs, spawn } = cleanedAfterEach();

/** name and nice value of each thread of `pid`. */
function threads(pid: number): { tid: number; name: string; nice: number }[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "latin1");
      const close = stat.lastIndexOf(")");
      const name = stat.slice(stat.indexOf("(") + 1, close);
      return [{ tid: Number(tid), name, nice: Number(stat.slice(close + 2).split(" ")[16]) }];
    } catch {
      return [];
    }
  });
}

const SCHED_OTHER = 0;
const SCHED_BATCH = 3;

/** The scheduling policy of thread `tid` of `pid` (sched.h numbers). */
function policy(pid: number, tid: number): number {
  const sched = readFileSync(`/proc/${pid}/task/${tid}/sched`, "utf8");
  return Number(/^policy\s*:\s*(\d+)$/m.exec(sched)?.[1]);
}

async function until(done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(50);
  }
}

test.skipIf(process.platform !== "linux")(
  "serve runs the allocator's scavenger niced and the dedup writer in the batch class, the event loop and the I/O threads not",
  async () => {
    const made = makeTestConfig();
    dirs.push(made.dir);
    const s = await spawn(made.configFile);
    const pid = s.proc.pid;
    // Requests make the engine compile: JIT threads, if any start, are niced too.
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${s.url}/api/s/track`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Write-Key": made.keys.browser },
        body: JSON.stringify({ type: "track", event: "e", userId: "u", messageId: `tp-${i}` }),
      });
      expect(res.status).toBe(200);
    }
    const scavenger = () => threads(pid).filter((t) => t.name === "mi-scavenger");
    await until(
      () => scavenger().length > 0 && scavenger().every((t) => t.nice === BACKGROUND_NICE),
    );
    // Rescanned every second: JIT threads started by the requests get there too.
    await until(() =>
      threads(pid)
        .filter((t) => t.name === "JITWorker" || t.name === "JSCWarmUp")
        .every((t) => t.nice === BACKGROUND_NICE),
    );
    const all = threads(pid);
    expect(all.find((t) => t.tid === pid)?.nice).toBe(0);
    for (const t of all.filter((t) => t.name.startsWith("Bun Pool"))) expect(t.nice).toBe(0);
    // The dedup writer thread moved itself to the batch class; the event loop did not.
    expect(policy(pid, pid)).toBe(SCHED_OTHER);
    const workers = all.filter((t) => t.name === "Worker").map((t) => policy(pid, t.tid));
    expect(workers).toContain(SCHED_BATCH);
    s.proc.kill("SIGTERM");
    expect(await exitCode(s.proc, 15_000)).toBe(0);
  },
);
