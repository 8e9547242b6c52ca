import type { LogPosition, LogRecord } from "../interface.ts";
import { HEADER_BYTES, scanRecords } from "./record.ts";
import { listSegments, readSegmentBytes, segmentPath } from "./segments.ts";

const READ_CHUNK = 4 * 1024 * 1024;
const MIN_CHUNK = 64 * 1024;

/**
 * Reads up to `max` records from `from` on, across segments, never past `limit` (the
 * writer's durable end) when given. Stops quietly at a record that is not (yet)
 * whole: a reader beside a running writer may see a write in progress.
 */
export function readRecords(
  dir: string,
  from: LogPosition,
  max: number,
  limit?: LogPosition,
): LogRecord[] {
  const out: LogRecord[] = [];
  for (const seg of listSegments(dir)) {
    if (seg < from.segment) continue;
    if (limit && seg > limit.segment) break;
    const end = limit && seg === limit.segment ? limit.offset : Number.POSITIVE_INFINITY;
    let offset = seg === from.segment ? from.offset : 0;
    while (out.length < max && offset < end) {
      // Read about what `max` records need (events are mostly under 2 KB), not a fixed
      // 4 MB: a consumer asking for 100 records should not copy megabytes each time.
      const guess = Math.max(MIN_CHUNK, (max - out.length) * 2048);
      const want = Math.min(READ_CHUNK, guess, end - offset);
      const { buf } = readSegmentBytes(segmentPath(dir, seg), offset, want);
      if (buf.byteLength === 0) break;
      let scan = scanRecords(buf, offset, max - out.length);
      if (scan.records.length === 0 && buf.byteLength === want && scan.problem) {
        // Possibly one record larger than a chunk: read exactly what its header asks for.
        const length = new DataView(buf.buffer, buf.byteOffset).getUint32(0, true);
        const whole = readSegmentBytes(segmentPath(dir, seg), offset, HEADER_BYTES + length).buf;
        scan = scanRecords(whole, offset, 1);
      }
      if (scan.records.length === 0) break;
      for (const r of scan.records) {
        out.push({
          position: { segment: seg, offset: r.offset },
          next: { segment: seg, offset: r.offset + HEADER_BYTES + r.payload.byteLength },
          payload: r.payload,
        });
      }
      offset = scan.validEnd;
    }
    if (out.length >= max) break;
  }
  return out;
}
