/**
 * The dedup store alone as its window grows: batches of random UUIDv4 ids checked
 * (`seen`) and recorded (`remember`) as ingestion does, paced at `--rate` keys/s (the
 * soak's ~60k events/s by default), and every `--every` keys the CPU per key of each
 * thread of this process (the event loop, the writer thread, the engine's helpers),
 * with the event loop's wall time inside `seen` and `remember`. Where the CPU per key
 * goes as the window fills, without HTTP, the event log or the other helpers' noise on
 * the event loop.
 *
 *   bun bench/experiments/dedup-growth.ts [--keys 16000000] [--rate 60000]
 *       [--every 1000000] [--batch 500] [--src OTHER/src/dedup/sqlite.ts]
 *
 * `--src` runs another checkout's store (a before/after comparison).
 */

import { heapSize } from "bun:jsc";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { memoryMb, type ThreadSample, threadSamples } from "../lib/proc.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const KEYS = Number(opt("keys") ?? 16_000_000);
const RATE = Number(opt("rate") ?? 60_000);
const EVERY = Number(opt("every") ?? 1_000_000);
const BATCH = Number(opt("batch") ?? 500);
const SRC = resolve(opt("src") ?? join(import.meta.dir, "../../src/dedup/sqlite.ts"));
const { SqliteDedupStore } = (await import(SRC)) as typeof import("../../src/dedup/sqlite.ts");

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

const dir = mkdtempSync(join(tmpdir(), "sluice-dedup-growth-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const store = await SqliteDedupStore.open(dir, { windowSeconds: 86_400 });
console.log(`store ${SRC}, ${fmt(KEYS)} keys at ${fmt(RATE)} keys/s in batches of ${BATCH}`);

/** Threads grouped by name (JIT workers come and go), the writer by its own name. */
function byName(samples: Map<string, ThreadSample>): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of samples.values()) {
    out.set(t.name, (out.get(t.name) ?? 0) + t.user + t.system);
  }
  return out;
}

let prev = byName(threadSamples(process.pid));
let seenMs = 0;
let rememberMs = 0;
const started = performance.now();
let last = started;
console.log(
  "| keys | keys/s | µs/key by thread | seen µs/key | remember µs/key | heap MB | RSS MB |",
);
for (let done = 0; done < KEYS; done += BATCH) {
  const ids = Array.from({ length: BATCH }, () => crypto.randomUUID());
  const t0 = performance.now();
  const seen = await store.seen("bench", ids);
  const t1 = performance.now();
  if (seen.size > 0) throw new Error(`${seen.size} new ids taken for duplicates`);
  store.remember(
    ids.map((messageId) => ({ sourceId: "bench", messageId })),
    "1:0",
  );
  const t2 = performance.now();
  seenMs += t1 - t0;
  rememberMs += t2 - t1;
  await store.backlog();
  // Paced: wait until this batch's time has come (the store's timer runs meanwhile).
  const due = started + ((done + BATCH) / RATE) * 1000;
  const wait = due - performance.now();
  await (wait > 1 ? Bun.sleep(wait) : new Promise((r) => setImmediate(r)));
  if ((done + BATCH) % EVERY === 0) {
    const now = performance.now();
    const cpu = byName(threadSamples(process.pid));
    const parts = [...cpu]
      .map(([name, s]) => [name, ((s - (prev.get(name) ?? 0)) * 1e6) / EVERY] as const)
      .filter(([, us]) => us >= 0.05)
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => `${name} ${fmt(us, 2)}`);
    console.log(
      `| ${fmt(done + BATCH)} | ${fmt(EVERY / ((now - last) / 1000))} | ${parts.join(", ")} | ` +
        `${fmt((seenMs * 1000) / EVERY, 2)} | ${fmt((rememberMs * 1000) / EVERY, 2)} | ` +
        `${fmt(heapSize() / 1e6)} | ${fmt(memoryMb(process.pid).rss)} |`,
    );
    prev = cpu;
    last = now;
    seenMs = 0;
    rememberMs = 0;
  }
}
await store.close();
