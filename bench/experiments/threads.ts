/**
 * CPU of each thread of `sluice serve` under single events (`track`), paced as run.ts's
 * "half max" row or at full speed: how much of the process's CPU runs beside the event
 * loop (Bun's I/O pool, the allocator's and the JIT's threads, the dedup and search
 * index writers). With the server pinned to one core (as run.ts does), all of it
 * competes with the event loop for that core.
 *
 *   bun bench/experiments/threads.ts [--pause MS] [--connections N] [--duration S]
 *       [--entry OTHER/src/main.ts] [--no-pin]
 *
 * Thread names are the kernel's (`/proc/<pid>/task/<tid>/comm`): "bun.exe" (or
 * "bun") is the event loop, "Worker" a Worker thread, "Bun Pool N" Bun's I/O threads.
 */

import { readdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { resolve } from "node:path";
import { measure } from "../lib/measure.ts";
import { preflight } from "../lib/preflight.ts";
import { startSluice } from "../lib/servers.ts";
import { SCENARIOS } from "../scenarios.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const pauseMs = Number(opt("pause") ?? 10);
const connections = Number(opt("connections") ?? (pauseMs > 0 ? 70 : 16));
const seconds = Number(opt("duration") ?? 10);
const entry = opt("entry") ? resolve(opt("entry")!) : undefined;
const pin = !argv.includes("--no-pin") && cpus().length >= 2;
const scenario = SCENARIOS.find((s) => s.name === "track")!;

/** CPU seconds (user + system) of each thread, by "tid name". */
function threads(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(`${tid} ${name}`, (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

const server = await startSluice({ cpu: pin ? 1 : undefined, entry });
try {
  await preflight(server, scenario);
  const loaderCpu = pin ? 0 : undefined;
  await measure(server, scenario, { warmupSeconds: 0, seconds: 3, loaderCpu });
  const before = threads(server.pid);
  const m = await measure(server, scenario, {
    warmupSeconds: 0,
    seconds,
    loaderCpu,
    pauseMs,
    connections,
  });
  const after = threads(server.pid);
  console.log(
    `${Math.round(m.reqPerSec)} req/s, p99 ${m.p99Ms.toFixed(1)} ms, server CPU ` +
      `${Math.round(m.serverCpu * 100)}%, other CPU ${Math.round(m.otherCpu * 100)}%`,
  );
  const rows = [...after]
    .map(([thread, cpu]) => [thread, cpu - (before.get(thread) ?? 0)] as const)
    .filter(([, cpu]) => cpu > 0.005)
    .sort((a, b) => b[1] - a[1]);
  for (const [thread, cpu] of rows) {
    console.log(
      `${thread.padEnd(28)} ${((100 * cpu) / seconds).toFixed(1).padStart(5)}% of a core, ` +
        `${((cpu * 1e6) / m.requests).toFixed(1).padStart(6)} µs/request`,
    );
  }
} finally {
  await server.stop();
}
