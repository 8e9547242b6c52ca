/**
 * A process for crash.test.ts to kill -9: it plays the server's part around a dedup
 * store on DIR. Its "event log" is DIR/log.txt, one batch number per line, flushed with
 * fsync before the batch's keys are remembered, as the server appends events before it
 * records their keys. On start it replays the log after the store's checkpoint, as
 * src/ingest/replay.ts does, then writes new batches until killed, printing each with
 * the store's time, and each move of the store's checkpoint (a run written).
 *
 *   bun crash-child.ts DIR CLOCK_MS SNAPSHOT_MIN_KEYS
 *
 * The store's clock starts at CLOCK_MS, where the process before this one stopped; the
 * filter is copied to disk at most once per SNAPSHOT_MIN_KEYS keys.
 */
import { fsyncSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { SqliteDedupStore } from "../../src/dedup/sqlite.ts";
import { batchKeys, clockFrom, loggedBatches, WINDOW_SECONDS } from "./crash-batches.ts";

// Never outlive the test: a runner killed mid-test must not leave this writing forever.
const parent = process.ppid;
setTimeout(() => process.exit(3), 120_000);

const dir = process.argv[2]!;
const now = clockFrom(Number(process.argv[3]));
const store = await SqliteDedupStore.open(dir, {
  windowSeconds: WINDOW_SECONDS,
  now,
  snapshotMinKeys: Number(process.argv[4]),
});
const logged = loggedBatches(dir);
const from = Number(store.checkpoint() ?? -1);
for (const b of logged) if (b > from) store.remember(batchKeys(b), String(b));
console.log(`replayed ${logged.filter((b) => b > from).length}`);

const path = join(dir, "log.txt");
const fd = openSync(path, "a");
let written = Number(store.checkpoint() ?? -1);
let next = logged.length > 0 ? Math.max(...logged) + 1 : 0;
for (;;) {
  if (process.ppid !== parent) process.exit(3);
  const b = next++;
  const keys = batchKeys(b);
  const seen = await store.seen(
    "web",
    keys.map((k) => k.messageId),
  );
  if (seen.size > 0) console.log(`FALSE DUPLICATES in batch ${b}: ${seen.size}`);
  writeSync(fd, `${b}\n`);
  fsyncSync(fd);
  store.remember(keys, String(b));
  console.log(`batch ${b} at ${now()}`);
  // A run written: the test kills some processes right after their first one.
  const checkpoint = Number(store.checkpoint() ?? -1);
  if (checkpoint !== written) {
    written = checkpoint;
    console.log(`written up to ${written}`);
  }
  await new Promise((r) => setImmediate(r));
}
