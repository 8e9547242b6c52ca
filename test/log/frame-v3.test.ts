import { expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SqliteOffsetStore } from "../../src/delivery/offsets.ts";
import { FileEventLog } from "../../src/log/file/file-log.ts";
import { encodeFrames, encodeRecords, encodeRecordsV1 } from "../../src/log/file/record.ts";
import { segmentPath } from "../../src/log/file/segments.ts";
import { FileLogStream } from "../../src/log/file-stream.ts";
import type { EventLog, LogRecord } from "../../src/log/interface.ts";
import type { StreamRecord } from "../../src/log/stream.ts";
import { openStateDb } from "../../src/state/sqlite.ts";
import { memoryLogger } from "../support/logger.ts";
import { tempDirs } from "../support/process.ts";

// Issue 14: the record frame (v3) carries sourceId, type and receivedAt beside the
// event, so readers filter without parsing it; segments of v1 and v2 frames written
// before still read, also when v3 frames follow v2 ones in the same segment.

const tempDir = tempDirs();
const enc = new TextEncoder();
const dec = new TextDecoder();
const T0 = Date.UTC(2026, 11, 2, 8, 0, 0);
const json = (i: number, sourceId = "web") =>
  JSON.stringify({
    messageId: `m-${i}`,
    sourceId,
    type: "track",
    receivedAt: new Date(T0 + i).toISOString(),
  });

function readAll(log: EventLog): LogRecord[] {
  const out: LogRecord[] = [];
  let from = log.start();
  for (;;) {
    const page = log.read(from, 7);
    if (page.length === 0) return out;
    out.push(...page);
    from = page.at(-1)!.next;
  }
}
const ids = (records: { payload: Uint8Array }[]) =>
  records.map((r) => (JSON.parse(dec.decode(r.payload)) as { messageId: string }).messageId);
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `m-${from + i}`);

test("a v3 frame holds sourceId, type and receivedAt beside the JSON text, checksummed", async () => {
  const root = tempDir("frame-v3");
  const dir = join(root, "log");
  const { logger } = memoryLogger();
  const log = await FileEventLog.open({ dir, segmentBytes: 1 << 20, logger });
  await log.append([
    { sourceId: "web", type: "track", payload: json(0), receivedAt: T0 },
    { sourceId: "app.ios", type: "identify", payload: enc.encode(json(1, "app.ios")) },
    { sourceId: "web", type: "page", payload: `{"messageId":"m-2","note":"naïve ☃ 😀"}` },
  ]);
  const read = readAll(log);
  expect(ids(read)).toEqual(range(3));
  expect(read.map((r) => [r.sourceId, r.type, r.receivedAt])).toEqual([
    ["web", "track", T0],
    ["app.ios", "identify", undefined],
    ["web", "page", undefined],
  ]);
  expect(dec.decode(read[2]!.payload)).toBe(`{"messageId":"m-2","note":"naïve ☃ 😀"}`);
  // Each record's place: one after the other, as the framed sizes say.
  expect(read[1]!.position).toEqual(read[0]!.next);
  await log.close();
  // The bytes on disk start with the v3 marker; a flipped byte in the sourceId is caught.
  const bytes = readFileSync(segmentPath(dir, 1));
  expect([...bytes.subarray(0, 4)]).toEqual([0xf5, 0x53, 0x4c, 0x33]);
  bytes[16 + 12]! ^= 0x01; // first byte of the first record's sourceId
  writeFileSync(segmentPath(dir, 1), bytes);
  const reopened = await FileEventLog.open({ dir, segmentBytes: 1 << 20, logger });
  expect(ids(readAll(reopened))).toEqual(["m-1", "m-2"]);
  await reopened.close();
});

test("encodeFrames: the same bytes from the JSON text as from its UTF-8 encoding", () => {
  const text = json(7);
  const a = encodeFrames([{ sourceId: "web", type: "track", payload: text, receivedAt: T0 }]);
  const b = encodeFrames([
    { sourceId: "web", type: "track", payload: enc.encode(text), receivedAt: T0 },
  ]);
  expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
  expect(a.sizes).toEqual([a.bytes.byteLength]);
  // A bare payload is still framed as v2.
  const bare = encodeFrames([enc.encode(text)]);
  expect(Buffer.from(bare.bytes).equals(Buffer.from(encodeRecords([enc.encode(text)])))).toBe(true);
});

test("an old v2 segment is read and appended to with v3 frames; the stream reads both, filtering by source", async () => {
  const root = tempDir("frame-v3");
  const dir = join(root, "log");
  mkdirSync(dir);
  // Written by the previous version: v2 frames, sourceId only inside the JSON.
  writeFileSync(
    segmentPath(dir, 1),
    encodeRecords([0, 1, 2, 3].map((i) => enc.encode(json(i, i % 2 ? "app" : "web")))),
  );
  const { logger, lines } = memoryLogger();
  const log = await FileEventLog.open({ dir, segmentBytes: 1 << 20, logger });
  const db = openStateDb(root);
  const stream = new FileLogStream(log, new SqliteOffsetStore(db));
  try {
    await stream.append(
      [4, 5, 6].map((i) => ({
        sourceId: i === 5 ? "app" : "web",
        type: "track",
        payload: json(i, i === 5 ? "app" : "web"),
        receivedAt: T0 + i,
      })),
    );
    // v3 frames go on in the same segment (its frames are marked, like v2's).
    expect(log.end().segment).toBe(1);
    expect(ids(readAll(log))).toEqual(range(7));
    const web = await stream.consumer("web", { start: "oldest", sourceId: "web" });
    const got: StreamRecord[] = await web.read(10);
    expect(ids(got)).toEqual(["m-0", "m-2", "m-4", "m-6"]);
    // The old records' sourceId, type and time come from their JSON, the new ones' from the frame.
    expect(got.map((r) => [r.sourceId, r.type, r.receivedAt])).toEqual(
      [0, 2, 4, 6].map((i) => ["web", "track", T0 + i]),
    );
    expect(await web.lag()).toBe(4);
    await web.commit(got[1]!.cursor);
    expect(await web.backlog()).toEqual({ records: 2, oldestAt: T0 + 4 });
  } finally {
    await stream.close();
    db.close();
  }
  expect(lines.some((l) => (l.level as number) >= 40)).toBe(false);
});

test("a v1 segment is still read; new v3 records go to a new segment", async () => {
  const root = tempDir("frame-v3");
  const dir = join(root, "log");
  mkdirSync(dir);
  writeFileSync(segmentPath(dir, 1), encodeRecordsV1([0, 1, 2].map((i) => enc.encode(json(i)))));
  const { logger } = memoryLogger();
  const log = await FileEventLog.open({ dir, segmentBytes: 1 << 20, logger });
  await log.append([{ sourceId: "web", type: "track", payload: json(3) }]);
  expect(log.end().segment).toBe(2);
  const read = readAll(log);
  expect(ids(read)).toEqual(range(4));
  expect(read.map((r) => r.sourceId)).toEqual([undefined, undefined, undefined, "web"]);
  await log.close();
});

test("a damaged v3 frame is skipped: reading resynchronises on the next marker", async () => {
  const root = tempDir("frame-v3");
  const dir = join(root, "log");
  const { logger, lines } = memoryLogger();
  const log = await FileEventLog.open({ dir, segmentBytes: 1 << 20, logger });
  for (let i = 0; i < 10; i++)
    await log.append([{ sourceId: "web", type: "track", payload: json(i) }]);
  const before = readAll(log);
  await log.close();
  const bytes = readFileSync(segmentPath(dir, 1));
  bytes[before[4]!.position.offset + 40]! ^= 0x10; // inside record 4's payload
  writeFileSync(segmentPath(dir, 1), bytes);
  const reopened = await FileEventLog.open({ dir, segmentBytes: 1 << 20, logger });
  expect(ids(readAll(reopened))).toEqual(range(10).filter((id) => id !== "m-4"));
  expect(lines.filter((l) => l.msg === "event log: corrupt record skipped")).toHaveLength(1);
  await reopened.close();
});

// Issue 11 (sixth session): a batch is framed in a buffer the next batch is framed in
// again; what an append hands on (its pending write) must be bytes of its own.
test("batches framed while earlier ones wait for their write keep their own bytes", async () => {
  const root = tempDir("frame-v3");
  const dir = join(root, "log");
  const { logger } = memoryLogger();
  const log = await FileEventLog.open({ dir, segmentBytes: 64 << 20, logger });
  // Each batch well past the size framed in a fresh buffer of its own (64 kB).
  const batch = (b: number) =>
    Array.from({ length: 300 }, (_, i) => ({
      sourceId: "web",
      type: "track",
      payload: json(b * 300 + i),
      receivedAt: T0 + b,
    }));
  const first = encodeFrames(batch(0));
  const copy = Uint8Array.from(first.bytes);
  encodeFrames(batch(1));
  expect(first.bytes).toEqual(copy);
  // Appended together: all but the first wait in the log's group while the rest are framed.
  const batches = Array.from({ length: 6 }, (_, b) => batch(b));
  await Promise.all(batches.map((records) => log.append(records)));
  const read = readAll(log);
  expect(ids(read)).toEqual(range(1800));
  // Byte for byte what each batch framed alone makes.
  const expected = Buffer.concat(batches.map((records) => encodeFrames(records).bytes));
  expect(readFileSync(segmentPath(dir, 1)).subarray(0, expected.byteLength)).toEqual(expected);
  await log.close();
});
