/**
 * What sluice's memory does under 500-event batches (issue 11, fifth session): every
 * 100 ms the server's RSS (/proc) and its JS heap (`sluice_memory_bytes` from
 * /metrics: heap_used, heap_total, array_buffers), so that the peak can be split into
 * live heap, garbage waiting for a collection, and memory outside the JS heap.
 * Variants (an environment for `sluice serve`, e.g. JSC options `BUN_JSC_…`, or
 * `BUN_OPTIONS=--smol`) run interleaved per round, optionally paced (`--pause MS`: mean
 * pause per connection), so that they are compared at the same rate on a loaded machine.
 *
 *   bun bench/experiments/batch-memory.ts [--variants "default;BUN_JSC_x=1 Y=2"]
 *       [--rounds 2] [--duration 8] [--pause 0] [--entry OTHER/src/main.ts] [--stderr DIR]
 *       [--connections 16,4]
 *
 * Prints per run: events/s, server CPU µs per event, peak RSS, the highest heap_used
 * and heap_total, the RSS minus heap_total at the RSS peak, and how many times heap_used
 * fell by more than 5 MB between two samples (collections seen at 100 ms). `--stderr DIR`
 * keeps each server's standard error (e.g. with `BUN_JSC_logGC=1`: one line a collection).
 * `--connections` runs each variant at each of these client counts (batches in flight;
 * the scenario's own is 16).
 */
import { copyFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { measure } from "../lib/measure.ts";
import { memoryMb } from "../lib/proc.ts";
import { startSluice } from "../lib/servers.ts";
import { SCENARIOS } from "../scenarios.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const variants = (opt("variants") ?? "default").split(";").map((v) => v.trim());
const rounds = Number(opt("rounds") ?? 2);
const seconds = Number(opt("duration") ?? 8);
const pauseMs = opt("pause") ? Number(opt("pause")) : undefined;
const entry = opt("entry") ? resolve(opt("entry")!) : undefined;
const stderrDir = opt("stderr");
const scenario = SCENARIOS.find((s) => s.name === "batch-500")!;
const connectionCounts = (opt("connections") ?? String(scenario.connections))
  .split(",")
  .map(Number);

function envOf(variant: string): Record<string, string> {
  if (variant === "default") return {};
  return Object.fromEntries(
    variant.split(/\s+/).map((kv) => {
      const eq = kv.indexOf("=");
      return [kv.slice(0, eq), kv.slice(eq + 1)];
    }),
  );
}

const MB = 1024 * 1024;

async function heapOf(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^sluice_memory_bytes\{kind="(\w+)"\} (\S+)$/gm)) {
    out[m[1]!] = Number(m[2]) / MB;
  }
  return out;
}

for (let round = 0; round < rounds; round++) {
  for (const connections of connectionCounts)
    for (const variant of variants) {
      const server = await startSluice({ entry, env: envOf(variant) });
      try {
        const samples: { rss: number; used: number; total: number; buffers: number }[] = [];
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            try {
              const h = await heapOf(server.url);
              samples.push({
                rss: memoryMb(server.pid).rss,
                used: h.heap_used ?? 0,
                total: h.heap_total ?? 0,
                buffers: h.array_buffers ?? 0,
              });
            } catch {}
            await Bun.sleep(100);
          }
        })();
        const m = await measure(server, scenario, {
          warmupSeconds: 2,
          seconds,
          pauseMs,
          connections,
        });
        sampling = false;
        await sampler;
        const peak = samples.reduce((a, b) => (b.rss > a.rss ? b : a), samples[0]!);
        let drops = 0;
        for (let i = 1; i < samples.length; i++) {
          if (samples[i]!.used < samples[i - 1]!.used - 5) drops++;
        }
        const max = (k: "used" | "total" | "buffers") => Math.max(...samples.map((s) => s[k]));
        console.log(
          `[${variant}] ${connections} connections, round ${round + 1}: ${Math.round(m.eventsPerSec)} events/s, ` +
            `${((m.serverCpu * 1e6) / m.eventsPerSec).toFixed(1)} µs/event, peak RSS ${Math.round(m.peakRssMb)} MB ` +
            `(sampled ${Math.round(peak.rss)}), heap_used max ${Math.round(max("used"))}, heap_total max ` +
            `${Math.round(max("total"))}, array_buffers max ${Math.round(max("buffers"))}, RSS - heap_total at the RSS peak ` +
            `${Math.round(peak.rss - peak.total)} MB, heap drops > 5 MB: ${drops} in ${samples.length} samples, other CPU ${Math.round(m.otherCpu * 100)}%`,
        );
      } finally {
        if (stderrDir) {
          mkdirSync(stderrDir, { recursive: true });
          const name = `${variant.replace(/[^\w=.-]+/g, "_")}-${round + 1}.err`;
          copyFileSync(`/proc/${server.pid}/fd/2`, join(stderrDir, name));
        }
        await server.stop();
      }
    }
}
