import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteOffsetStore } from "../../src/delivery/offsets.ts";
import { FileEventLog } from "../../src/log/file/file-log.ts";
import { FileLogStream } from "../../src/log/file-stream.ts";
import type { EventLog } from "../../src/log/interface.ts";
import type { AppendRecord } from "../../src/log/stream.ts";
import { openStateDb } from "../../src/state/sqlite.ts";
import { memoryLogger } from "../support/logger.ts";

// Issue 14: `/metrics` lag comes from counters, not from reading records per scrape.
// The file backend counts each closed segment's records per source once; appends add
// to a consumer's backlog and commits take from it.

const tmp: string[] = [];
afterEach(() => {
  for (const d of tmp.splice(0)) rmSync(d, { recursive: true, force: true });
});

const T0 = Date.UTC(2026, 11, 2, 9, 0, 0);
const recs = (from: number, count: number, sourceId: string): AppendRecord[] =>
  Array.from({ length: count }, (_, i) => ({
    sourceId,
    type: "track",
    receivedAt: T0 + from + i,
    payload: JSON.stringify({ messageId: `m-${from + i}`, sourceId, n: from + i }),
  }));

test("a backlog is counted once; asking again, after appends and after commits, reads no records", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-backlog-"));
  tmp.push(dir);
  const { logger } = memoryLogger();
  const file = await FileEventLog.open({ dir: join(dir, "log"), segmentBytes: 16 * 1024, logger });
  let reads = 0;
  // The file log, with its reads counted.
  const counted = new Proxy(file, {
    get(target, prop) {
      if (prop === "read") {
        return (from: Parameters<EventLog["read"]>[0], max: number) => {
          reads++;
          return target.read(from, max);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as EventLog;
  const db = openStateDb(dir);
  const stream = new FileLogStream(counted, new SqliteOffsetStore(db));
  try {
    // Several segments, two sources interleaved.
    for (let k = 0; k < 20; k++) {
      await stream.append(recs(k * 100, 60, "web"));
      await stream.append(recs(k * 100 + 60, 40, "app"));
    }
    expect(file.segments().length).toBeGreaterThan(5);
    const web = await stream.consumer("con_web", { start: "oldest", sourceId: "web" });
    expect(await web.backlog()).toEqual({ records: 1200, oldestAt: T0 });
    const afterCount = reads;
    // Scrapes: no reads at all.
    for (let i = 0; i < 50; i++)
      expect((await stream.backlog("con_web", "web"))?.records).toBe(1200);
    expect(reads).toBe(afterCount);
    // Appends add without reading.
    await stream.append(recs(5000, 7, "web"));
    await stream.append(recs(5100, 9, "app"));
    expect((await web.backlog()).records).toBe(1207);
    expect(reads).toBe(afterCount);
    // Commits take from it; the oldest record's time is looked up once per commit.
    const read = await web.read(100);
    await web.commit(read.at(-1)!.cursor);
    const before = reads;
    expect(await web.backlog()).toEqual({ records: 1107, oldestAt: T0 + 140 });
    for (let i = 0; i < 20; i++) await stream.backlog("con_web", "web");
    expect(reads - before).toBeLessThanOrEqual(1);
    // A closed consumer (a paused connection) keeps counting.
    await web.close();
    await stream.append(recs(6000, 3, "web"));
    expect((await stream.backlog("con_web", "web"))?.records).toBe(1110);
    // And a fresh stream over the same files counts the same.
    const again = new FileLogStream(file, new SqliteOffsetStore(db));
    expect((await again.backlog("con_web", "web"))?.records).toBe(1110);
  } finally {
    await stream.close();
    db.close();
  }
});

test("a consumer of a quiet source moves its offset past other sources' records (retention is not held back), never past its own uncommitted ones", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-quiet-"));
  tmp.push(dir);
  const { logger } = memoryLogger();
  const file = await FileEventLog.open({ dir: join(dir, "log"), segmentBytes: 1 << 20, logger });
  const db = openStateDb(dir);
  const offsets = new SqliteOffsetStore(db);
  const stream = new FileLogStream(file, offsets);
  try {
    const quiet = await stream.consumer("con_app", { start: "oldest", sourceId: "app" });
    await stream.append(recs(0, 50, "web"));
    expect(await quiet.read(10)).toEqual([]);
    expect(offsets.get("con_app")).toEqual(file.end());
    // Its own record read, not committed: the offset stays before it while others pass.
    await stream.append(recs(50, 1, "app"));
    const before = offsets.get("con_app");
    const [mine] = await quiet.read(10);
    expect(mine).toBeDefined();
    await stream.append(recs(60, 20, "web"));
    expect(await quiet.read(10)).toEqual([]);
    expect(offsets.get("con_app")).toEqual(before);
    // Committed: past it and the other records read after it.
    await quiet.commit(mine!.cursor);
    expect(offsets.get("con_app")).toEqual(file.end());
    expect(await quiet.lag()).toBe(0);
  } finally {
    await stream.close();
    db.close();
  }
});
