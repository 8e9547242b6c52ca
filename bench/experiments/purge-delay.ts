/**
 * The allocator's purge settings, A/B: for each variant (an environment for `sluice
 * serve`), interleaved per round: run.ts's "half max" row (single events, paced) with
 * the CPU of the event loop and of mimalloc's scavenger thread per request and the p99;
 * then a burst of 500-event batches at full speed (peak RSS); then an idle period, and
 * the RSS at its end (does the memory go back?).
 *
 *   bun bench/experiments/purge-delay.ts [--variants "default;MIMALLOC_PURGE_DELAY=1000;…"]
 *       [--rounds N] [--duration S] [--burst S] [--idle S] [--entry OTHER/src/main.ts]
 *
 * A variant is `default` (the environment as given) or space-separated NAME=VALUE pairs.
 * Set on top of the bench's own environment, so run the bench itself without them.
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
const variants = (opt("variants") ?? "default;MIMALLOC_PURGE_DELAY=1000;MIMALLOC_PURGE_DELAY=-1")
  .split(";")
  .map((v) => v.trim())
  .filter(Boolean);
const rounds = Number(opt("rounds") ?? 2);
const seconds = Number(opt("duration") ?? 8);
const burstSeconds = Number(opt("burst") ?? 5);
const idleSeconds = Number(opt("idle") ?? 10);
const entry = opt("entry") ? resolve(opt("entry")!) : undefined;
const pin = cpus().length >= 2;
const track = SCENARIOS.find((s) => s.name === "track")!;
const batch = SCENARIOS.find((s) => s.name === "batch-500")!;

function parseVariant(v: string): Record<string, string> {
  if (v === "default") return {};
  return Object.fromEntries(
    v.split(/\s+/).map((pair) => {
      const eq = pair.indexOf("=");
      return [pair.slice(0, eq), pair.slice(eq + 1)];
    }),
  );
}

/** CPU seconds (user + system) by thread name (summed over threads of one name). */
function threads(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const cpu = (Number(fields[11]) + Number(fields[12])) / 100;
      out.set(name, (out.get(name) ?? 0) + cpu);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

const saved = { ...process.env };
console.log(
  "variant | req/s | p99 ms | loop µs/req | scavenger µs/req | process µs/req | idle RSS | peak RSS (burst) | RSS after idle | other CPU",
);
for (let round = 1; round <= rounds; round++) {
  for (const variant of variants) {
    for (const k of Object.keys(process.env)) if (k.startsWith("MIMALLOC_")) delete process.env[k];
    for (const [k, v] of Object.entries(saved)) if (k.startsWith("MIMALLOC_")) process.env[k] = v;
    Object.assign(process.env, parseVariant(variant));
    const server = await startSluice({ cpu: pin ? 1 : undefined, entry });
    try {
      const loaderCpu = pin ? 0 : undefined;
      await preflight(server, track);
      await measure(server, track, { warmupSeconds: 0, seconds: 3, loaderCpu });
      const before = threads(server.pid);
      const m = await measure(server, track, {
        warmupSeconds: 0,
        seconds,
        loaderCpu,
        pauseMs: 10,
        connections: 70,
      });
      const after = threads(server.pid);
      const per = (name: string) => {
        let cpu = 0;
        for (const [n, c] of after) if (n.startsWith(name)) cpu += c - (before.get(n) ?? 0);
        return (cpu * 1e6) / m.requests;
      };
      let total = 0;
      for (const [n, c] of after) total += c - (before.get(n) ?? 0);
      await preflight(server, batch);
      let peak = rssMb(server.pid);
      const poll = setInterval(() => {
        peak = Math.max(peak, rssMb(server.pid));
      }, 100);
      await measure(server, batch, { warmupSeconds: 0, seconds: burstSeconds, loaderCpu });
      clearInterval(poll);
      peak = Math.max(peak, rssMb(server.pid));
      await Bun.sleep(idleSeconds * 1000);
      const rest = rssMb(server.pid);
      console.log(
        [
          `r${round} ${variant}`,
          Math.round(m.reqPerSec),
          m.p99Ms.toFixed(1),
          per("bun").toFixed(0),
          per("mi-").toFixed(1),
          ((total * 1e6) / m.requests).toFixed(0),
          server.idleRssMb.toFixed(1),
          peak.toFixed(1),
          rest.toFixed(1),
          `${Math.round(m.otherCpu * 100)}%`,
        ].join(" | "),
      );
    } finally {
      await server.stop();
    }
  }
}
