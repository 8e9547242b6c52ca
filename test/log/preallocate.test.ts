import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { verifyLog } from "../../src/cli/log.ts";
import { FileEventLog } from "../../src/log/file/file-log.ts";
import { type CorruptRecord, readRecords } from "../../src/log/file/reader.ts";
import { segmentPath } from "../../src/log/file/segments.ts";
import { memoryLogger } from "../support/logger.ts";

// Issue 11: new segments are preallocated to the segment size, so a group commit's
// synchronous write does not grow the file. The zeros past the records are the end of
// the data for every reader and for recovery (no warning), sizes report used bytes,
// and a clean stop or a rotation cuts the zeros off.

const tmp: string[] = [];
afterEach(() => {
  for (const d of tmp.splice(0)) rmSync(d, { recursive: true, force: true });
});

const enc = new TextEncoder();
const event = (i: number) =>
  enc.encode(JSON.stringify({ messageId: `m-${i}`, pad: "x".repeat(100) }));
const SEGMENT = 64 * 1024;

test.if(process.platform === "linux")(
  "a new segment has its full size from the start; appends do not change it",
  async () => {
    const root = mkdtempSync(join(tmpdir(), "sluice-prealloc-"));
    tmp.push(root);
    const dir = join(root, "log");
    const { logger, lines } = memoryLogger();
    const log = await FileEventLog.open({ dir, segmentBytes: SEGMENT, logger });
    const path = segmentPath(dir, 1);
    expect(statSync(path).size).toBe(SEGMENT);
    for (let i = 0; i < 50; i += 5) {
      await log.append(Array.from({ length: 5 }, (_, j) => event(i + j)));
      expect(statSync(path).size).toBe(SEGMENT);
    }
    // Sizes are the records', not the reservation's (retention, metrics, inspector).
    const used = log.end().offset;
    expect(used).toBeLessThan(SEGMENT);
    expect(log.segments()).toEqual([{ segment: 1, bytes: used, modifiedAt: expect.any(Number) }]);
    // A reader beside the writer (log tail, replay: no durable end to stop at) stops at
    // the zeros quietly; verify takes them as the end of the data.
    const seen: CorruptRecord[] = [];
    expect(
      readRecords(dir, { segment: 1, offset: 0 }, 1000, undefined, (c) => seen.push(c)),
    ).toHaveLength(50);
    expect(seen).toEqual([]);
    expect(verifyLog(root)).toMatchObject({ records: 50, problems: [] });

    // A crash (the log not closed): the next start finds the zero tail, keeps it to
    // write on, warns about nothing.
    const after = await FileEventLog.open({ dir, segmentBytes: SEGMENT, logger });
    expect(after.end()).toEqual({ segment: 1, offset: used });
    expect(statSync(path).size).toBe(SEGMENT);
    await after.append([event(50)]);
    expect(statSync(path).size).toBe(SEGMENT);
    expect(lines.filter((l) => (l.level as number) >= 40)).toEqual([]);

    // Rotation: the full segment is cut to its records, the new one reserved.
    for (let i = 51; after.end().segment === 1 || i < 600; i++) await after.append([event(i)]);
    const first = statSync(path).size;
    expect(first).toBeGreaterThanOrEqual(SEGMENT);
    expect(first).toBeLessThan(SEGMENT + 200);
    expect(after.segments()[0]!.bytes).toBe(first);
    const current = after.end().segment;
    expect(statSync(segmentPath(dir, current)).size).toBe(SEGMENT);
    // A clean stop cuts the zeros off the segment being written.
    await after.close();
    expect(statSync(segmentPath(dir, current)).size).toBe(after.end().offset);
    expect(verifyLog(root).problems).toEqual([]);
    // The "crashed" first log: let its file go without its clean stop.
    await (log as unknown as { handle: { close(): Promise<void> } }).handle.close();
  },
);

test.if(process.platform === "linux")(
  "a crash between starting a segment and trimming the one before: the reserved zeros are cut at the next open",
  async () => {
    const root = mkdtempSync(join(tmpdir(), "sluice-prealloc-"));
    tmp.push(root);
    const dir = join(root, "log");
    const { logger } = memoryLogger();
    const first = await FileEventLog.open({ dir, segmentBytes: SEGMENT, logger });
    await first.append(Array.from({ length: 10 }, (_, i) => event(i)));
    const used = first.end().offset;
    await first.close();
    expect(statSync(segmentPath(dir, 1)).size).toBe(used);
    // As a crash mid-rotation leaves it: segment 1 still reserved, segment 2 empty.
    truncateSync(segmentPath(dir, 1), SEGMENT);
    writeFileSync(segmentPath(dir, 2), "");
    const log = await FileEventLog.open({ dir, segmentBytes: SEGMENT, logger });
    expect(statSync(segmentPath(dir, 1)).size).toBe(used);
    expect(log.segments()[0]).toMatchObject({ segment: 1, bytes: used });
    expect(readRecords(dir, { segment: 1, offset: 0 }, 1000, log.end())).toHaveLength(10);
    await log.close();
  },
);
