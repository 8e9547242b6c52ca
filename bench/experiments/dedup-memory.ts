/**
 * The dedup store alone under load, on a copy of a window filled by
 * `bun bench/capacity.ts --fill-only DIR`: what the process holds (RSS, the JS heap, memory
 * outside it) and how fast keys go in, with no HTTP server around it. For profiling the
 * capacity scenario's memory and throughput, not a target of its own.
 *
 *   bun bench/experiments/dedup-memory.ts DIR [--seconds 60] [--rate 30000] [--known 0.01]
 */
import { heapStats } from "bun:jsc";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteDedupStore } from "../../src/dedup/sqlite.ts";

const argv = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const from = argv[0]!;
const SECONDS = opt("seconds", 60);
const RATE = opt("rate", 30_000);
const KNOWN = opt("known", 0.01);
/** `-` for an empty window. */
const empty = from === "-";
const sample = empty
  ? [crypto.randomUUID()]
  : (JSON.parse(readFileSync(join(from, "capacity.json"), "utf8")) as { sample: string[] }).sample;

const dir = mkdtempSync(join(tmpdir(), "dedup-memory-"));
const mb = (n: number) => (n / 1048576).toFixed(0);
function report(tag: string) {
  if (argv.includes("--gc")) Bun.gc(true);
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = (f: string) => Number(new RegExp(`^${f}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  const h = heapStats();
  const u = process.memoryUsage();
  console.log(
    `${tag}: rss ${(kb("VmRSS") / 1024).toFixed(0)} MB (hwm ${(kb("VmHWM") / 1024).toFixed(0)}), ` +
      `js heap ${mb(h.heapSize)} MB, extra ${mb(h.extraMemorySize)} MB, arrayBuffers ${mb(u.arrayBuffers)} MB, ` +
      `objects ${h.objectCount}`,
  );
}
try {
  let t = performance.now();
  if (!empty) cpSync(join(from, "dedup.db"), join(dir, "dedup.db"));
  console.log(`copied in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  report("before open");
  t = performance.now();
  const store = await SqliteDedupStore.open(dir, { windowSeconds: 86_400 });
  console.log(`opened in ${((performance.now() - t) / 1000).toFixed(2)} s`);
  report("opened");
  const start = performance.now();
  let keys = 0;
  let lastReport = start;
  let cpu = process.cpuUsage();
  const cpu0 = cpu;
  while (performance.now() - start < SECONDS * 1000) {
    const ids: string[] = [];
    for (let i = 0; i < 500; i++) {
      ids.push(
        Math.random() < KNOWN
          ? sample[Math.floor(Math.random() * sample.length)]!
          : crypto.randomUUID(),
      );
    }
    const seen = await store.seen("bench", ids);
    store.remember(
      ids.filter((id) => !seen.has(id)).map((messageId) => ({ sourceId: "bench", messageId })),
      "1:0:0",
    );
    keys += 500;
    await store.backlog();
    await new Promise((r) => setImmediate(r));
    const due = start + (keys / RATE) * 1000;
    if (due > performance.now()) await Bun.sleep(due - performance.now());
    if (performance.now() - lastReport > 5000) {
      const c = process.cpuUsage(cpu);
      cpu = process.cpuUsage();
      const secs = (performance.now() - lastReport) / 1000;
      lastReport = performance.now();
      report(
        `${((lastReport - start) / 1000).toFixed(0)} s, ${keys} keys, cpu ${((c.user + c.system) / 1e6 / secs).toFixed(2)} cores`,
      );
    }
  }
  const total = process.cpuUsage(cpu0);
  console.log(
    `CPU per key under load (process, both threads): ${((total.user + total.system) / keys).toFixed(2)} µs`,
  );
  t = performance.now();
  await store.close();
  console.log(`closed in ${((performance.now() - t) / 1000).toFixed(2)} s`);
  report("closed");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
