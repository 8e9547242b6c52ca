/**
 * Two sluice checkouts side by side on copies of one filled window (see
 * `bench/capacity.ts --fill-only`), loaded at the same time by one wrk each: on a shared,
 * noisy machine both suffer the same neighbours, so their ratios mean something where
 * one run after the other does not. Prints per server: events/s, CPU µs per event, peak
 * RSS, idle RSS, and the restart after kill -9 (both restarted at once).
 *
 *   bun bench/experiments/capacity-ab.ts DIR BEFORE/src/main.ts AFTER/src/main.ts [--seconds 40]
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { sampleRss } from "../lib/proc.ts";
import { type BenchServer, startSluice } from "../lib/servers.ts";
import { runWrk } from "../lib/wrk.ts";

const [dir, before, after] = process.argv.slice(2) as [string, string, string];
const i = process.argv.indexOf("--seconds");
const SECONDS = i >= 0 ? Number(process.argv[i + 1]) : 40;

async function copy(dataDir: string) {
  for (const name of readdirSync(dir)) {
    // dedup.db (and its WAL) and the filter copies' folder, dedup-filter/.
    if (!name.startsWith("dedup.db") && name !== "dedup-filter") continue;
    const cp = Bun.spawnSync(["cp", "-r", "--reflink=auto", join(dir, name), join(dataDir, name)]);
    if (cp.exitCode !== 0) throw new Error(cp.stderr.toString());
  }
}

const entries = { before, after } as const;
const servers: Record<string, BenchServer> = {};
// Started one after the other (their start times are not compared here), loaded together.
for (const [name, entry] of Object.entries(entries)) {
  servers[name] = await startSluice({ entry, prepare: copy });
  console.log(
    `${name}: started in ${(servers[name]!.startMs / 1000).toFixed(2)} s, idle RSS ${servers[name]!.idleRssMb.toFixed(0)} MB`,
  );
}
try {
  const results = await Promise.all(
    Object.entries(servers).map(async ([name, server]) => {
      const rss = sampleRss(server.pid, 200);
      const cpu = server.cpuSeconds();
      const r = await runWrk({
        url: `${server.url}/v1/batch`,
        connections: 16,
        seconds: SECONDS,
        headers: {
          "Content-Type": "application/json",
          Authorization: `Basic ${Buffer.from(`${server.keys.server}:`).toString("base64")}`,
        },
        mode: "uuid",
        tag: `ab${name}${Date.now().toString(36)}`,
        size: 500,
      });
      const events = r.requests * 500;
      return {
        name,
        eventsPerSec: events / (r.durationUs / 1e6),
        cpuUsPerEvent: ((server.cpuSeconds() - cpu) * 1e6) / events,
        peakRssMb: rss.stop(),
        hwmMb: server.memoryMb().hwm,
      };
    }),
  );
  for (const r of results) {
    console.log(
      `${r.name}: ${r.eventsPerSec.toFixed(0)} events/s, ${r.cpuUsPerEvent.toFixed(1)} µs CPU/event, peak RSS ${r.peakRssMb.toFixed(0)} MB (VmHWM ${r.hwmMb.toFixed(0)})`,
    );
  }
  const restarted = await Promise.all(
    Object.entries(servers).map(async ([name, s]) => [name, await s.killAndRestart()] as const),
  );
  for (const [name, s] of restarted) {
    servers[name] = s;
    console.log(
      `${name}: after kill -9 ready in ${(s.startMs / 1000).toFixed(2)} s, idle RSS ${s.idleRssMb.toFixed(0)} MB`,
    );
  }
} finally {
  for (const s of Object.values(servers)) await s.stop();
}
