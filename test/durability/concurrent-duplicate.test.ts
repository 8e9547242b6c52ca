import { expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { ResolvedKey } from "../../src/auth/resolve.ts";
import type { SourceConfig } from "../../src/config/schema.ts";
import { SqliteDedupStore } from "../../src/dedup/sqlite.ts";
import { SqliteOffsetStore } from "../../src/delivery/offsets.ts";
import { StorageError } from "../../src/errors.ts";
import { IngestService } from "../../src/ingest/service.ts";
import { FileEventLog } from "../../src/log/file/file-log.ts";
import { segmentPath } from "../../src/log/file/segments.ts";
import { FileLogStream } from "../../src/log/file-stream.ts";
import { openStateDb } from "../../src/state/sqlite.ts";
import { memoryLogger } from "../support/logger.ts";
import { tempDirs } from "../support/process.ts";
import { storedEvents } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

// SPEC 5: the same messageId in two concurrent requests is stored once; the second
// request waits for the first one's write (src/ingest/service.ts, claims) and is
// acknowledged only once that write is durable. If the write fails, the event was never
// stored: the waiting request must fail too (the client retries), not answer
// "duplicate" for it. Real parts throughout: the file log, its segment files, dedup.db.
//
// In process, not over HTTP: two requests in flight at once, the second arriving while
// the first has claimed the id but not written it, is a moment HTTP cannot pin down.
// `ingest` claims its ids synchronously, before its first await, so calling it twice in
// a row is exactly that moment.

const tempDir = tempDirs();

const key: ResolvedKey = {
  source: { id: "web", name: "Website", writeKeys: [] } as unknown as SourceConfig,
  keyId: "wk_server",
  type: "server",
};

const request = (...messageIds: string[]) => ({
  key,
  items: messageIds.map((messageId) => ({
    type: "track",
    event: "Waited",
    userId: "u",
    messageId,
  })),
  receivedAt: Date.now(),
});

/** An ingest service on a real file log and dedup store in a fresh data dir. */
async function openIngest() {
  const dataDir = tempDir("waiter");
  const { logger } = memoryLogger();
  const logDir = join(dataDir, "log");
  const log = await FileEventLog.open({ dir: logDir, segmentBytes: 1 << 20, logger });
  const db = openStateDb(dataDir);
  const stream = new FileLogStream(log, new SqliteOffsetStore(db), logger);
  const dedup = await SqliteDedupStore.open(dataDir, { windowSeconds: 3600 });
  const ingest = new IngestService({ log: stream, dedup, logger, maxEventBytes: 32_768 });
  return {
    ingest,
    dedup,
    stream,
    dataDir,
    /** Deletes the segment being written: the next append fails (it "vanished"). */
    breakLog: () => rmSync(segmentPath(logDir, log.end().segment)),
    async close() {
      await dedup.close();
      await stream.close();
      db.close();
    },
  };
}

const storedIds = async (dataDir: string) =>
  (await storedEvents(dataDir)).map((e) => String(e.messageId));

test("a concurrent duplicate is acknowledged as a duplicate only after the first request stored the event", async () => {
  const s = await openIngest();
  try {
    const order: string[] = [];
    const first = s.ingest.ingest(request("same", "first-only")).then((r) => {
      order.push("first");
      return r;
    });
    const second = s.ingest.ingest(request("same")).then((r) => {
      order.push("second");
      return r;
    });
    expect(await second).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(await first).toMatchObject({ accepted: 2, duplicates: 0 });
    expect(order).toEqual(["first", "second"]);
    expect((await storedIds(s.dataDir)).sort()).toEqual(["first-only", "same"]);
  } finally {
    await s.close();
  }
});

test("a concurrent duplicate of an event whose log write fails is not acknowledged; sent again, it is stored once", async () => {
  const s = await openIngest();
  try {
    expect(await s.ingest.ingest(request("before"))).toMatchObject({ accepted: 1 });
    s.breakLog();
    // The first request claims "lost" and then fails to append it; the second finds the
    // claim and waits for the first one's outcome.
    const first = s.ingest.ingest(request("lost"));
    const second = s.ingest.ingest(request("lost"));
    const [a, b] = await Promise.allSettled([first, second]);
    expect(a.status).toBe("rejected");
    expect((a as PromiseRejectedResult).reason).toBeInstanceOf(StorageError);
    // Not "duplicate, stored": the event is nowhere, so this request fails as well.
    expect(b.status).toBe("rejected");
    expect((b as PromiseRejectedResult).reason).toBeInstanceOf(StorageError);
    expect((await s.dedup.seen("web", ["lost"])).size).toBe(0);

    // The log starts a new segment by itself; the client sends the event again.
    await waitFor(() => s.stream.healthy(), { what: "the event log healthy again" });
    expect(await s.ingest.ingest(request("lost"))).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(await s.ingest.ingest(request("lost"))).toMatchObject({ accepted: 0, duplicates: 1 });
    expect((await storedIds(s.dataDir)).filter((id) => id === "lost")).toEqual(["lost"]);
  } finally {
    await s.close();
  }
});
