/**
 * The re-read of a restart after kill -9, alone: on a copy of a filled window (see
 * `bench/capacity.ts --fill-only`), KEYS keys are written after the filter copies (as a
 * load after a clean start does), then the store is opened again beside the first one
 * (a crash: no copy since) twice: with the runs' hash blobs, and with the blobs dropped
 * (the keys' rows re-read, as before the blobs). Prints the open time and CPU of each.
 *
 *   bun bench/experiments/dedup-reread.ts DIR [--keys 2000000]
 */
import { Database } from "bun:sqlite";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteDedupStore } from "../../src/dedup/sqlite.ts";

const argv = process.argv.slice(2);
const from = argv[0]!;
const k = argv.indexOf("--keys");
const KEYS = k >= 0 ? Number(argv[k + 1]) : 2_000_000;
const dir = mkdtempSync(join(tmpdir(), "dedup-reread-"));
const opts = { windowSeconds: 86_400 };

async function timedOpen(tag: string) {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  const store = await SqliteDedupStore.open(dir, opts);
  const c = process.cpuUsage(cpu);
  console.log(
    `${tag}: opened in ${((performance.now() - wall) / 1000).toFixed(2)} s wall, ` +
      `${((c.user + c.system) / 1e6).toFixed(2)} s CPU (this thread and the writer's start)`,
  );
  return store;
}

try {
  cpSync(join(from, "dedup.db"), join(dir, "dedup.db"));
  const first = await SqliteDedupStore.open(dir, opts);
  for (let done = 0; done < KEYS; done += 500) {
    const ids = Array.from({ length: 500 }, () => crypto.randomUUID());
    first.remember(
      ids.map((messageId) => ({ sourceId: "bench", messageId })),
      "1:0:0",
    );
    await first.backlog();
    await new Promise((r) => setImmediate(r));
  }
  await first.flush();
  console.log(`${KEYS} keys written after the filter copies`);
  // `first` stays open and never copies its filter again: the next opens are restarts
  // after a crash.
  const withBlobs = await timedOpen("re-read from the runs' hash blobs");
  const db = new Database(join(dir, "dedup.db"));
  for (const { name } of db
    .query<{ name: string }, []>("SELECT name FROM sqlite_schema WHERE name GLOB 'hashes_[0-9]*'")
    .all()) {
    db.exec(`DELETE FROM ${name}`);
  }
  db.close();
  const withRows = await timedOpen("re-read from the keys' rows (blobs deleted)");
  // Three stores on one file: they are left open (their writers would otherwise write
  // filter copies at close); the temp dir goes, then the process.
  void first;
  void withBlobs;
  void withRows;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
