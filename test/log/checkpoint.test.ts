import { expect, test } from "bun:test";
import { join } from "node:path";
import { SqliteDedupStore } from "../../src/dedup/sqlite.ts";
import { SqliteOffsetStore } from "../../src/delivery/offsets.ts";
import { replayDedupKeys } from "../../src/ingest/replay.ts";
import { checkpointCursor } from "../../src/log/checkpoint.ts";
import { FileEventLog } from "../../src/log/file/file-log.ts";
import { encodeRecords } from "../../src/log/file/record.ts";
import { FileLogStream } from "../../src/log/file-stream.ts";
import { openStateDb } from "../../src/state/sqlite.ts";
import { memoryLogger } from "../support/logger.ts";
import { tempDirs } from "../support/process.ts";

// Issue 14: the dedup checkpoint is an opaque log cursor. One stored by the version
// before it (a file log position `{ segment, offset }`) still tells start-up where to
// replay from.

const tempDir = tempDirs();

test("checkpointCursor: a cursor as stored, an old file position as its cursor, anything else none", () => {
  expect(checkpointCursor("3:1200")).toBe("3:1200");
  expect(checkpointCursor("42")).toBe("42");
  expect(checkpointCursor({ segment: 3, offset: 1200 })).toBe("3:1200");
  for (const bad of [null, "", 7, { segment: "3", offset: 1 }, { segment: 1.5, offset: 0 }, []]) {
    expect(checkpointCursor(bad)).toBeUndefined();
  }
});

test("an old {segment, offset} checkpoint in dedup.db: start-up replays only the records after it", async () => {
  const dir = tempDir("checkpoint");
  const enc = new TextEncoder();
  const { logger } = memoryLogger();
  const log = await FileEventLog.open({ dir: join(dir, "log"), segmentBytes: 1 << 20, logger });
  // Written by the previous version: v2 frames, the sourceId inside the JSON only.
  const event = (i: number) =>
    enc.encode(
      JSON.stringify({
        messageId: `m-${i}`,
        sourceId: "web",
        receivedAt: new Date().toISOString(),
      }),
    );
  const firstEnd = await log.append([event(0), event(1)]);
  await log.append([event(2), event(3)]);
  expect(encodeRecords([event(0), event(1)]).byteLength).toBe(firstEnd.offset);
  // The old checkpoint: keys of m-0 and m-1 were written, up to the end of their append.
  const store = await SqliteDedupStore.open(dir, { windowSeconds: 3600 });
  store.remember(
    [
      { sourceId: "web", messageId: "m-0" },
      { sourceId: "web", messageId: "m-1" },
    ],
    "1:0",
  );
  await store.close();
  const raw = new (await import("bun:sqlite")).Database(join(dir, "dedup.db"));
  raw.run("UPDATE meta SET value = ? WHERE key = 'checkpoint'", [JSON.stringify(firstEnd)]);
  raw.close();

  const reopened = await SqliteDedupStore.open(dir, { windowSeconds: 3600 });
  expect(reopened.checkpoint()).toBe(`1:${firstEnd.offset}`);
  const db = openStateDb(dir);
  const stream = new FileLogStream(log, new SqliteOffsetStore(db));
  try {
    expect(await replayDedupKeys(stream, reopened, logger)).toBe(2);
    expect([...(await reopened.seen("web", ["m-2", "m-3"]))].sort()).toEqual(["m-2", "m-3"]);
  } finally {
    await reopened.close();
    await stream.close();
    db.close();
  }
});
