/**
 * CPU profile of sluice alone (no baseline) under one or more bench scenarios, for
 * comparing where the time goes before and after a change (issue 11).
 *
 *   bun bench/experiments/profile.ts DIR [--only track,batch-500] [--duration S]
 *       [--warmup S] [--entry OTHER/src/main.ts] [--rounds N] [--no-profile]
 *
 * Each scenario gets a fresh server started with `--cpu-prof --cpu-prof-md`; the
 * profile lands in DIR/<scenario>/ when the server stops. Prints the measured rate and
 * the server's CPU per event, which on a shared machine are only indicative: compare
 * self-time shares in the profiles, not absolute numbers. `--no-profile` measures
 * without the profiler (an A/B of CPU per event: run it once with `--entry` on the
 * old tree and once without, interleaved by `--rounds`).
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { measure } from "../lib/measure.ts";
import { preflight } from "../lib/preflight.ts";
import { startSluice } from "../lib/servers.ts";
import { SCENARIOS } from "../scenarios.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const dir = argv[0];
if (!dir || dir.startsWith("--")) {
  console.error("usage: bun bench/experiments/profile.ts DIR [--only a,b] [--duration S]");
  process.exit(2);
}
const only = (opt("only") ?? "track,batch-500").split(",");
const seconds = Number(opt("duration") ?? 15);
const warmupSeconds = Number(opt("warmup") ?? 3);
const entry = opt("entry") ? resolve(opt("entry")!) : undefined;
const rounds = Number(opt("rounds") ?? 1);
const profiling = !argv.includes("--no-profile");

for (let round = 0; round < rounds; round++)
  for (const name of only) {
    const scenario = SCENARIOS.find((s) => s.name === name);
    if (!scenario) throw new Error(`unknown scenario ${name}`);
    const profileDir = resolve(join(dir, name));
    mkdirSync(profileDir, { recursive: true });
    const server = await startSluice({ profileDir: profiling ? profileDir : undefined, entry });
    try {
      await preflight(server, scenario);
      const m = await measure(server, scenario, { warmupSeconds, seconds });
      const cpuPerEvent = (m.serverCpu * 1e6) / m.eventsPerSec;
      console.log(
        `${name}: ${Math.round(m.reqPerSec)} req/s, ${Math.round(m.eventsPerSec)} events/s, ` +
          `p50/p99 ${m.p50Ms.toFixed(2)}/${m.p99Ms.toFixed(1)} ms, server CPU ` +
          `${Math.round(m.serverCpu * 100)}% (${cpuPerEvent.toFixed(1)} µs/event), other CPU ` +
          `${Math.round(m.otherCpu * 100)}%, peak RSS ${Math.round(m.peakRssMb)} MB, errors ${m.statusErrors}/${m.socketErrors}`,
      );
    } finally {
      await server.stop();
    }
    if (profiling) console.log(`${name}: profile in ${profileDir}`);
  }
