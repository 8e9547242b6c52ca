/**
 * Which functions the JIT compiles while `sluice serve` is under steady single-event
 * load (issue 11): the JIT threads took 5–9% of a core at the "half max" row. Runs the
 * server with JSC's `reportCompileTimes`, warms it up, then counts the compilations
 * during the measured window by function and tier (a function compiled again and again
 * is a deoptimisation loop).
 *
 *   bun bench/experiments/jit-churn.ts [--warmup S] [--duration S] [--pause MS] [--top N]
 */
import { readFileSync, readlinkSync } from "node:fs";
import { cpus } from "node:os";
import { measure } from "../lib/measure.ts";
import { preflight } from "../lib/preflight.ts";
import { startSluice } from "../lib/servers.ts";
import { SCENARIOS } from "../scenarios.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const warmup = Number(opt("warmup") ?? 5);
const seconds = Number(opt("duration") ?? 10);
const pauseMs = Number(opt("pause") ?? 10);
const top = Number(opt("top") ?? 30);
const pin = cpus().length >= 2;
const scenario = SCENARIOS.find((s) => s.name === (opt("scenario") ?? "track"))!;

process.env.BUN_JSC_reportCompileTimes = "1";
const server = await startSluice({ cpu: pin ? 1 : undefined });
const errFile = readlinkSync(`/proc/${server.pid}/fd/2`);
try {
  await preflight(server, scenario);
  const loaderCpu = pin ? 0 : undefined;
  const shape = { loaderCpu, pauseMs, connections: pauseMs > 0 ? 70 : 16 };
  await measure(server, scenario, { warmupSeconds: 0, seconds: warmup, ...shape });
  const from = readFileSync(errFile).length;
  const m = await measure(server, scenario, { warmupSeconds: 0, seconds, ...shape });
  const lines = readFileSync(errFile).subarray(from).toString("utf8").split("\n");
  const counts = new Map<string, { n: number; ms: number }>();
  let total = 0;
  for (const line of lines) {
    const match = /^Optimized (\S+?)#\S* .* using (\w+) .* in ([\d.]+) ms/.exec(line);
    if (!match) continue;
    const key = `${match[1]} ${match[2]}`;
    const c = counts.get(key) ?? { n: 0, ms: 0 };
    c.n++;
    c.ms += Number(match[3]);
    total += Number(match[3]);
    counts.set(key, c);
  }
  console.log(
    `${Math.round(m.reqPerSec)} req/s over ${seconds} s after ${warmup} s: ` +
      `${[...counts.values()].reduce((n, c) => n + c.n, 0)} compilations, ${total.toFixed(0)} ms`,
  );
  for (const [key, c] of [...counts].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
    console.log(`${key.padEnd(60)} ${String(c.n).padStart(5)} × ${c.ms.toFixed(1).padStart(8)} ms`);
  }
} finally {
  await server.stop();
}
