import { expect, test } from "bun:test";
import { join } from "node:path";
import { SqliteOffsetStore } from "../../src/delivery/offsets.ts";
import { FileEventLog } from "../../src/log/file/file-log.ts";
import { FileLogStream, positionAfter } from "../../src/log/file-stream.ts";
import type { EventLog } from "../../src/log/interface.ts";
import { type AppendRecord, BacklogCountingError } from "../../src/log/stream.ts";
import { openStateDb } from "../../src/state/sqlite.ts";
import { memoryLogger } from "../support/logger.ts";
import { tempDirs } from "../support/process.ts";

// Issue 14: `/metrics` lag comes from counters, not from reading records per scrape.
// The file backend counts each closed segment's records per source once; appends add
// to a consumer's backlog and commits take from it.

const tempDir = tempDirs();

const T0 = Date.UTC(2026, 11, 2, 9, 0, 0);
const recs = (from: number, count: number, sourceId: string): AppendRecord[] =>
  Array.from({ length: count }, (_, i) => ({
    sourceId,
    type: "track",
    receivedAt: T0 + from + i,
    payload: JSON.stringify({ messageId: `m-${from + i}`, sourceId, n: from + i }),
  }));

test("a backlog is counted once; asking again, after appends and after commits, reads no records", async () => {
  const dir = tempDir("backlog");
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
    // And a fresh stream over the same files counts the same: in the background (the
    // stream's backlog() never waits for a count; a consumer's does).
    const again = new FileLogStream(file, new SqliteOffsetStore(db));
    const counting = await again.backlog("con_web", "web").catch((e: unknown) => e);
    expect(counting).toBeInstanceOf(BacklogCountingError);
    await (counting as BacklogCountingError).counted;
    expect((await again.backlog("con_web", "web"))?.records).toBe(1110);
  } finally {
    await stream.close();
    db.close();
  }
});

test("a consumer of a quiet source moves its offset past other sources' records (retention is not held back), never past its own uncommitted ones", async () => {
  const dir = tempDir("quiet");
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

/** The file log with its reads (where each starts) and segment listings counted. */
function watched(file: EventLog) {
  const seen = { reads: [] as { segment: number; offset: number }[], listings: 0 };
  const log = new Proxy(file, {
    get(target, prop) {
      if (prop === "read") {
        return (from: Parameters<EventLog["read"]>[0], max: number) => {
          seen.reads.push({ ...from });
          return target.read(from, max);
        };
      }
      if (prop === "segments") {
        return () => {
          seen.listings++;
          return target.segments();
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as EventLog;
  return { log, seen };
}

test("a count from mid-segment reads the rest of that segment, takes closed segments from their counts (read once per stream), lists segments once, and yields to the event loop", async () => {
  const dir = tempDir("backlog");
  const { logger } = memoryLogger();
  const file = await FileEventLog.open({ dir: join(dir, "log"), segmentBytes: 16 * 1024, logger });
  const db = openStateDb(dir);
  const offsets = new SqliteOffsetStore(db);
  const writer = new FileLogStream(file, offsets);
  const cursors: string[] = [];
  const sources: string[] = [];
  for (let k = 0; k < 30; k++) {
    cursors.push(...(await writer.append(recs(k * 100, 60, "web"))));
    cursors.push(...(await writer.append(recs(k * 100 + 60, 40, "app"))));
    for (let i = 0; i < 60; i++) sources.push("web");
    for (let i = 0; i < 40; i++) sources.push("app");
  }
  const segments = file.segments().map((s) => s.segment);
  expect(segments.length).toBeGreaterThan(10);
  // Two connections far behind, each committed in the middle of an early segment.
  const mid = (n: number) => {
    const at = positionAfter(cursors[n]!)!;
    expect(at.offset).toBeGreaterThan(0);
    return at;
  };
  const webAt = 250;
  const appAt = 777;
  offsets.set("con_web", mid(webAt));
  offsets.set("con_app", mid(appAt));
  const expected = (from: number, source: string) =>
    sources.slice(from + 1).filter((s) => s === source).length;

  const { log, seen } = watched(file);
  const stream = new FileLogStream(log, offsets);
  try {
    // Not counted yet: the stream says so at once and counts in the background.
    const first = await stream.backlog("con_web", "web").catch((e: unknown) => e);
    expect(first).toBeInstanceOf(BacklogCountingError);
    // The event loop runs while it counts: what is queued now runs before it ends.
    let finished = false;
    let finishedWhenTicked: boolean | undefined;
    setImmediate(() => {
      finishedWhenTicked = finished;
    });
    const counted = (first as BacklogCountingError).counted.then(() => {
      finished = true;
    });
    // Appended while counting: added to it.
    await stream.append(recs(9000, 7, "web"));
    await counted;
    expect(finishedWhenTicked).toBe(false);
    expect((await stream.backlog("con_web", "web"))?.records).toBe(expected(webAt, "web") + 7);
    expect(seen.listings).toBe(1);

    // The second connection: its own segment's rest, the segment being written, and
    // no closed segment after it read again (their counts are kept).
    const appSegment = mid(appAt).segment;
    seen.reads.length = 0;
    seen.listings = 0;
    const second = await stream.backlog("con_app", "app").catch((e: unknown) => e);
    expect(second).toBeInstanceOf(BacklogCountingError);
    await (second as BacklogCountingError).counted;
    expect((await stream.backlog("con_app", "app"))?.records).toBe(expected(appAt, "app"));
    expect(seen.listings).toBe(1);
    const current = file.end().segment;
    const readSegments = new Set(seen.reads.map((r) => r.segment));
    for (const s of readSegments) expect([appSegment, current]).toContain(s);
    // Scrapes after that read nothing.
    seen.reads.length = 0;
    for (let i = 0; i < 20; i++) {
      await stream.backlog("con_app", "app");
      await stream.backlog("con_web", "web");
    }
    expect(seen.reads.length).toBeLessThanOrEqual(2); // the oldest record's time, once each
  } finally {
    await stream.close();
    db.close();
  }
});

test("a commit while the backlog is counted is taken from the count; a commit that does not say how many records it passed counts again", async () => {
  const dir = tempDir("backlog");
  const { logger } = memoryLogger();
  const file = await FileEventLog.open({ dir: join(dir, "log"), segmentBytes: 16 * 1024, logger });
  const db = openStateDb(dir);
  const offsets = new SqliteOffsetStore(db);
  const writer = new FileLogStream(file, offsets);
  const cursors: string[] = [];
  for (let k = 0; k < 20; k++) cursors.push(...(await writer.append(recs(k * 100, 100, "web"))));
  offsets.set("con_web", positionAfter(cursors[150]!)!);
  const stream = new FileLogStream(file, offsets);
  try {
    const consumer = await stream.consumer("con_web", { start: "oldest", sourceId: "web" });
    const err = await stream.backlog("con_web", "web").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BacklogCountingError);
    // Read and committed while counting: 30 records.
    const read = await consumer.read(30);
    expect(read).toHaveLength(30);
    await consumer.commit(read.at(-1)!.cursor);
    await (err as BacklogCountingError).counted;
    expect((await stream.backlog("con_web", "web"))?.records).toBe(2000 - 151 - 30);
    // The consumer's own backlog() waits for a count instead.
    expect((await consumer.backlog()).records).toBe(2000 - 151 - 30);
  } finally {
    await stream.close();
    db.close();
  }
});
