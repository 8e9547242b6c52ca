import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { LogPosition, LogRecord } from "../interface.ts";
import {
  detectFormat,
  frameLength,
  headerBytes,
  isZero,
  MAX_RECORD_BYTES,
  resync,
  type SegmentFormat,
  scanRecords,
  startsWithMagic,
  V1_HEADER_BYTES,
} from "./record.ts";
import { listSegments, segmentPath } from "./segments.ts";

const READ_CHUNK = 4 * 1024 * 1024;
const MIN_CHUNK = 64 * 1024;

/** A damaged stretch of a segment that readers skip: where it starts, how long it is. */
export interface CorruptRecord {
  segment: number;
  offset: number;
  bytes: number;
  reason: string;
}

/**
 * Reads up to `max` records from `from` on, across segments, never past `limit` (the
 * writer's durable end) when given.
 *
 * A damaged record is skipped: reading resumes at the next whole, valid record (v2
 * segments; in an old v1 segment, at the next segment), and `onCorrupt` hears of each
 * skipped stretch. Zero bytes (a preallocated segment's unwritten tail) end a segment's
 * data quietly. Without `limit`, the last segment's end may be a write in progress: a
 * frame that is not whole there, with no valid frame after it, ends reading quietly.
 */
export function readRecords(
  dir: string,
  from: LogPosition,
  max: number,
  limit?: LogPosition,
  onCorrupt?: (corrupt: CorruptRecord) => void,
): LogRecord[] {
  const out: LogRecord[] = [];
  const segments = listSegments(dir);
  for (const seg of segments) {
    if (seg < from.segment) continue;
    if (limit && seg > limit.segment) break;
    let fd: number;
    try {
      fd = openSync(segmentPath(dir, seg), "r");
    } catch {
      continue; // deleted by retention meanwhile
    }
    try {
      const start = seg === from.segment ? from.offset : 0;
      readSegment(fd, seg, start, max, out, {
        limit: limit && seg === limit.segment ? limit.offset : undefined,
        // Bytes before the writer's end, or in a segment that is no longer written, are
        // all meant to be records: anything else there is damage, not a write in progress.
        bounded: limit !== undefined || seg !== segments.at(-1),
        onCorrupt,
      });
    } finally {
      closeSync(fd);
    }
    if (out.length >= max) break;
  }
  return out;
}

function readSegment(
  fd: number,
  seg: number,
  start: number,
  max: number,
  out: LogRecord[],
  opts: { limit?: number; bounded: boolean; onCorrupt?: (c: CorruptRecord) => void },
): void {
  const st = fstatSync(fd);
  if (!st.isFile()) return; // not a segment (something else under its name)
  const size = st.size;
  const end = Math.min(size, opts.limit ?? size);
  if (start >= end) return;
  const format = segmentFormat(fd, size);
  const header = headerBytes(format);
  const report = (offset: number, bytes: number, reason: string) =>
    opts.onCorrupt?.({ segment: seg, offset, bytes, reason });
  let offset = start;
  while (out.length < max && offset < end) {
    // Read about what `max` records need (events are mostly under 2 KB), not a fixed
    // 4 MB: a consumer asking for 100 records should not copy megabytes each time.
    const want = Math.min(READ_CHUNK, Math.max(MIN_CHUNK, (max - out.length) * 2048), end - offset);
    let buf = pread(fd, offset, want);
    if (buf.byteLength === 0) return;
    let scan = scanRecords(buf, offset, max - out.length, format);
    const problem = scan.problem;
    if (scan.records.length === 0 && problem && problem.reason.startsWith("torn")) {
      // Possibly one record larger than the chunk: read exactly what its header asks for.
      const length = frameLength(buf, 0, format);
      if (
        length !== undefined &&
        offset + header + length <= end &&
        buf.byteLength < header + length
      ) {
        buf = pread(fd, offset, header + length);
        scan = scanRecords(buf, offset, 1, format);
      }
    }
    for (const r of scan.records) {
      out.push({
        position: { segment: seg, offset: r.offset },
        next: { segment: seg, offset: r.offset + r.bytes },
        payload: r.payload,
        sourceId: r.sourceId,
        type: r.type,
        receivedAt: r.receivedAt,
      });
    }
    if (scan.records.length > 0 || !scan.problem) {
      offset = scan.validEnd;
      continue;
    }
    // The live end of the last segment: its unwritten (zero) tail, read by a process
    // beside the writer. Nothing more to read there yet.
    if (!opts.bounded && scan.problem.reason === "zero") return;
    // The frame at `offset` is not a whole valid record: the end of the data, a write in
    // progress, or damage to skip. Look at everything up to the end to tell which.
    const rest = pread(fd, offset, end - offset);
    const next = format === 2 ? resync(rest, 0) : undefined;
    if (next !== undefined) {
      report(offset, next, scan.problem.reason);
      offset += next;
      continue;
    }
    if (!opts.bounded || isZero(rest)) return;
    report(offset, rest.byteLength, scan.problem.reason);
    return;
  }
}

/** A segment's format, from its first frame. */
function segmentFormat(fd: number, size: number): SegmentFormat {
  const head = pread(fd, 0, Math.min(size, V1_HEADER_BYTES));
  if (head.byteLength < V1_HEADER_BYTES) return 2;
  // A v2 frame starts with the marker, which as a v1 length reads ~805 MiB: never read
  // that much to find out.
  if (startsWithMagic(head, 0)) return 2;
  const length = new DataView(head.buffer).getUint32(0, true);
  if (length > MAX_RECORD_BYTES || length > size - V1_HEADER_BYTES) return 2;
  return detectFormat(pread(fd, 0, V1_HEADER_BYTES + length));
}

function pread(fd: number, from: number, length: number): Uint8Array {
  const buf = new Uint8Array(Math.max(0, length));
  let got = 0;
  while (got < buf.byteLength) {
    const n = readSync(fd, buf, got, buf.byteLength - got, from + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

export interface SegmentScan {
  format: SegmentFormat;
  records: number;
  /** After the last whole, valid record. */
  validEnd: number;
  /** Damaged stretches between valid records (skipped by readers). */
  corrupt: { offset: number; bytes: number; reason: string }[];
  /** What follows `validEnd` when it is neither nothing nor zeros: a torn or damaged tail. */
  tail?: { offset: number; reason: string };
}

/** Walks a whole segment's bytes: its records, damaged stretches and tail. */
export function scanSegment(buf: Uint8Array): SegmentScan {
  const format = detectFormat(buf.subarray(0, Math.min(buf.byteLength, 64 * 1024 * 1024 + 16)));
  const result: SegmentScan = { format, records: 0, validEnd: 0, corrupt: [] };
  let at = 0;
  while (at < buf.byteLength) {
    const scan = scanRecords(buf.subarray(at), at, Number.POSITIVE_INFINITY, format);
    result.records += scan.records.length;
    at = scan.validEnd;
    result.validEnd = at;
    if (!scan.problem) break;
    const next = format === 2 ? resync(buf, at) : undefined;
    if (next === undefined) {
      if (!isZero(buf, at)) result.tail = { offset: at, reason: scan.problem.reason };
      break;
    }
    result.corrupt.push({ offset: at, bytes: next - at, reason: scan.problem.reason });
    at = next;
  }
  return result;
}
