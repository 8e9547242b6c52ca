/**
 * Single events (`track`) at a fixed paced rate, as run.ts's "half max" row, for A/B
 * comparisons of the p99 and of the event log's group commits (issue 11):
 *
 *   bun bench/experiments/half-rate.ts [--connections N] [--pause MS] [--duration S]
 *       [--rounds N] [--entry OTHER/src/main.ts] [--no-pin] [--profile DIR]
 *
 * Each round starts a fresh server (pinned to CPU 1, wrk to CPU 0, as run.ts), warms it
 * up for 3 s, then runs N connections that each pause ~10 ms between requests (run.ts
 * sizes N to half of the measured maximum; 70 gave ~4,150 req/s on the quiet machine).
 * Prints the rate, p50/p99/p99.9, server CPU, and the flushes of the event log from
 * `sluice_log_flush_duration_seconds` (count, mean, share over 1, 2.5 and 5 ms).
 * With `--entry`, rounds alternate between that tree and this one (interleaved A/B).
 */
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
const connections = Number(opt("connections") ?? 70);
/** Mean pause per connection between requests (0: full speed, as the `track` row). */
const pauseMs = Number(opt("pause") ?? 10);
const seconds = Number(opt("duration") ?? 10);
const rounds = Number(opt("rounds") ?? 1);
const other = opt("entry") ? resolve(opt("entry")!) : undefined;
const profileDir = opt("profile") ? resolve(opt("profile")!) : undefined;
const pin = !argv.includes("--no-pin") && cpus().length >= 2;
const scenario = SCENARIOS.find((s) => s.name === "track")!;

/** Cumulative bucket counts of the flush histogram, by upper bound. */
async function flushes(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^sluice_log_flush_duration_seconds_(bucket\{le="([^"]+)"\}|sum|count) (\S+)/.exec(
      line,
    );
    if (m) out.set(m[2] ?? m[1]!, Number(m[3]));
  }
  return out;
}

for (let round = 0; round < rounds; round++) {
  for (const entry of other ? [other, undefined] : [undefined]) {
    const server = await startSluice({ cpu: pin ? 1 : undefined, entry, profileDir });
    try {
      await preflight(server, scenario);
      await measure(server, scenario, {
        warmupSeconds: 0,
        seconds: 3,
        loaderCpu: pin ? 0 : undefined,
      });
      const before = await flushes(server.url);
      const m = await measure(server, scenario, {
        warmupSeconds: 0,
        seconds,
        loaderCpu: pin ? 0 : undefined,
        pauseMs,
        connections,
      });
      const after = await flushes(server.url);
      const d = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
      const count = d("count");
      const over = (le: string) => ((100 * (count - d(le))) / count).toFixed(2);
      console.log(
        `${entry ? "A (entry)" : "B (this tree)"}: ${Math.round(m.reqPerSec)} req/s, p50/p99/p99.9 ` +
          `${m.p50Ms.toFixed(2)}/${m.p99Ms.toFixed(1)}/${m.p999Ms.toFixed(1)} ms, server CPU ` +
          `${Math.round(m.serverCpu * 100)}%, other CPU ${Math.round(m.otherCpu * 100)}%, ` +
          `flushes ${count} (${(m.requests / count).toFixed(1)} requests each, mean ${((1e6 * d("sum")) / count).toFixed(0)} µs; ` +
          `>1 ms ${over("0.001")}%, >2.5 ms ${over("0.0025")}%, >5 ms ${over("0.005")}%), ` +
          `errors ${m.statusErrors}/${m.socketErrors}`,
      );
    } finally {
      await server.stop();
    }
  }
}
