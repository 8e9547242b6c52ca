/**
 * Where the server's resident memory is at its peak under 500-event batches (issue 11,
 * sixth session): /proc/PID/smaps every 200 ms during a batch-500 run, and at the
 * sample with the highest RSS the resident bytes by mapping, the large anonymous ones
 * (allocator arenas and the engine's heap) one by one, plus the JS heap from /metrics.
 *
 *   bun bench/experiments/batch-smaps.ts [--duration 10] [--pause 0] [--entry OTHER/src/main.ts]
 *       [--env "K=V K2=V2"]
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { measure } from "../lib/measure.ts";
import { startSluice } from "../lib/servers.ts";
import { SCENARIOS } from "../scenarios.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const seconds = Number(opt("duration") ?? 10);
const pauseMs = opt("pause") ? Number(opt("pause")) : undefined;
const entry = opt("entry") ? resolve(opt("entry")!) : undefined;
const env = Object.fromEntries(
  (opt("env") ?? "")
    .split(/\s+/)
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);
const scenario = SCENARIOS.find((s) => s.name === "batch-500")!;

interface Mapping {
  range: string;
  name: string;
  sizeKb: number;
  rssKb: number;
}

function smaps(pid: number): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^([0-9a-f]+-[0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { range: head[1]!, name: head[2] ?? "", sizeKb: 0, rssKb: 0 };
      out.push(cur);
      continue;
    }
    const kv = /^(Size|Rss):\s+(\d+) kB/.exec(line);
    if (kv && cur) {
      if (kv[1] === "Size") cur.sizeKb = Number(kv[2]);
      else cur.rssKb = Number(kv[2]);
    }
  }
  return out;
}

const server = await startSluice({ entry, env });
try {
  let best: { rss: number; maps: Mapping[]; heap: string } | undefined;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        const maps = smaps(server.pid);
        const rss = maps.reduce((s, m) => s + m.rssKb, 0);
        if (!best || rss > best.rss) {
          const text = await (await fetch(`${server.url}/metrics`)).text();
          const heap = [...text.matchAll(/^sluice_memory_bytes\{kind="(\w+)"\} (\S+)$/gm)]
            .map((m) => `${m[1]} ${Math.round(Number(m[2]) / 2 ** 20)} MB`)
            .join(", ");
          best = { rss, maps, heap };
        }
      } catch {}
      await Bun.sleep(200);
    }
  })();
  const m = await measure(server, scenario, { warmupSeconds: 2, seconds, pauseMs });
  sampling = false;
  await sampler;
  const b = best!;
  const MB = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;
  console.log(
    `${Math.round(m.eventsPerSec)} events/s, ${((m.serverCpu * 1e6) / m.eventsPerSec).toFixed(1)} µs/event, ` +
      `peak RSS ${Math.round(m.peakRssMb)} MB; at the highest smaps sample: RSS ${MB(b.rss)}; ${b.heap}`,
  );
  const groups = new Map<string, number>();
  for (const x of b.maps) {
    const key = x.name
      ? x.name.replace(/^.*\//, "")
      : x.sizeKb >= 32 * 1024
        ? "[anon >= 32 MB]"
        : "[anon < 32 MB]";
    groups.set(key, (groups.get(key) ?? 0) + x.rssKb);
  }
  for (const [k, v] of [...groups].sort((a, c) => c[1] - a[1]).slice(0, 8))
    console.log(`  ${k}: ${MB(v)}`);
  console.log("  largest anonymous mappings by RSS:");
  for (const x of b.maps
    .filter((x) => !x.name)
    .sort((a, c) => c.rssKb - a.rssKb)
    .slice(0, 12)) {
    console.log(`    ${x.range} size ${MB(x.sizeKb)} rss ${MB(x.rssKb)}`);
  }
} finally {
  await server.stop();
}
