/**
 * Would a second server process use the second core better? Runs the single-event load
 * (wrk, unpinned, like the servers) against one sluice, then against two sluice
 * processes sharing the port through SO_REUSEPORT, each with its own data dir.
 *
 *   bun bench/experiments/two-processes.ts [--duration S]
 *
 * Two processes cannot share a data dir (SPEC 5: one owner per dir) nor dedup keys, so
 * this only bounds what a multi-process design (e.g. with the Redis state backend of
 * SPEC 9) could gain on this machine; it is not a supported mode.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateWriteKey, hashWriteKey } from "../../src/auth/keys.ts";
import { cpuSeconds, freePort, stopProcess, waitForHttp } from "../lib/proc.ts";
import { runWrk } from "../lib/wrk.ts";
import { SCENARIOS } from "../scenarios.ts";

const argv = process.argv.slice(2);
const seconds = Number(argv[argv.indexOf("--duration") + 1] || 10);
const scenario = SCENARIOS.find((s) => s.name === "track")!;
const ENTRY = join(import.meta.dir, "reuseport-entry.ts");

async function run(processes: number) {
  const port = freePort();
  const key = generateWriteKey("wk_browser");
  const dirs: string[] = [];
  const procs = [];
  for (let i = 0; i < processes; i++) {
    const dir = mkdtempSync(join(tmpdir(), "sluice-bench-2p-"));
    dirs.push(dir);
    const config = {
      server: { port, host: "127.0.0.1", dataDir: "./data" },
      sources: [
        {
          id: "bench",
          rateLimit: { eventsPerSecond: 1e9, burst: 1e9 },
          writeKeys: [{ id: "wk_browser", type: "browser", hash: hashWriteKey(key) }],
        },
      ],
    };
    writeFileSync(join(dir, "sluice.yaml"), JSON.stringify(config));
    const proc = Bun.spawn(
      [process.execPath, ENTRY, "serve", "--config", join(dir, "sluice.yaml")],
      {
        env: { ...process.env, SLUICE_LOG_LEVEL: "warn", PORT: "" },
        stdout: Bun.file(join(dir, "server.log")),
        stderr: Bun.file(join(dir, "server.err")),
      },
    );
    procs.push(proc);
    await waitForHttp(`http://127.0.0.1:${port}/health`, proc);
  }
  try {
    const url = `http://127.0.0.1:${port}${scenario.path}`;
    const load = (s: number, tag: string) =>
      runWrk({
        url,
        connections: scenario.connections,
        seconds: s,
        headers: scenario.headers({ browser: key, server: "", limited: "" }),
        mode: "single",
        tag,
        size: 1,
      });
    await load(3, `w${processes}${Date.now()}`);
    const before = procs.map((p) => cpuSeconds(p.pid));
    const r = await load(seconds, `m${processes}${Date.now()}`);
    const cpu = procs.map((p, i) => (cpuSeconds(p.pid) - before[i]!) / (r.durationUs / 1e6));
    return {
      processes,
      reqPerSec: Math.round(r.requests / (r.durationUs / 1e6)),
      p50Ms: r.latencyUs.p50 / 1000,
      p99Ms: r.latencyUs.p99 / 1000,
      serverCpu: cpu.map((c) => `${Math.round(c * 100)}%`).join(" + "),
      wrkCpu: `${Math.round(r.loaderCpu * 100)}%`,
      errors: r.errors.status,
    };
  } finally {
    for (const p of procs) await stopProcess(p);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

const results = [];
for (const n of [1, 2, 1, 2]) results.push(await run(n));
console.table(results);
