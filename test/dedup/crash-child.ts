/**
 * A process for crash.test.ts to kill -9: it plays the server's part around a dedup
 * store on DIR. Its "event log" is DIR/log.txt, one batch number per line, flushed with
 * fsync before the batch's keys are remembered, as the server appends events before it
 * records their keys. On start it replays the log after the store's checkpoint, as
 * src/ingest/replay.ts does, then writes new batches until killed, printing each.
 */
import { fsyncSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { SqliteDedupStore } from "../../src/dedup/sqlite.ts";
import { batchKeys, GEOMETRY, loggedBatches, WINDOW_SECONDS } from "./crash-batches.ts";

const dir = process.argv[2]!;
const store = await SqliteDedupStore.open(dir, {
  windowSeconds: WINDOW_SECONDS,
  geometry: GEOMETRY,
  snapshotMinKeys: 5_000,
});
const logged = loggedBatches(dir);
const from = store.checkpoint()?.offset ?? -1;
for (const b of logged) if (b > from) store.remember(batchKeys(b), { segment: 1, offset: b });
console.log(`replayed ${logged.filter((b) => b > from).length}`);

const path = join(dir, "log.txt");
const fd = openSync(path, "a");
let next = logged.length > 0 ? Math.max(...logged) + 1 : 0;
for (;;) {
  const b = next++;
  const keys = batchKeys(b);
  const seen = await store.seen(
    "web",
    keys.map((k) => k.messageId),
  );
  if (seen.size > 0) console.log(`FALSE DUPLICATES in batch ${b}: ${seen.size}`);
  writeSync(fd, `${b}\n`);
  fsyncSync(fd);
  store.remember(keys, { segment: 1, offset: b });
  console.log(`batch ${b}`);
  await new Promise((r) => setImmediate(r));
}
