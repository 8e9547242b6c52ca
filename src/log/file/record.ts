/**
 * Record framing for segment files.
 *
 * Current format (v2), written by this version:
 *   u32 magic 0xF5 'S' 'L' '2' | u32 LE payload length | u64 LE XXH64(payload, seed = length) | payload
 * The magic lets a reader resynchronise after a corrupt record: it scans forward to the
 * next magic whose frame checks out. Its first byte, 0xF5, never occurs in UTF-8 (every
 * payload is JSON text), so a payload cannot fake a frame start by itself. The checksum
 * is seeded with the length, so a damaged length is caught too. A frame whose magic
 * bytes are all zero is the zero-filled, not yet written tail of a segment.
 *
 * Old format (v1), still read in segments written before the upgrade:
 *   u32 LE payload length | u64 LE XXH64(payload) | payload
 * A v1 segment has no marker to resynchronise on: after a corrupt record, the rest of
 * the segment is skipped (and reported). A segment is v1 when its first bytes are a
 * valid v1 frame (a v2 segment starts with the magic, whose u32 value is far past any
 * record length); new records always go to v2 segments.
 */
export const HEADER_BYTES = 16;
export const V1_HEADER_BYTES = 12;
/** A record longer than this is treated as corruption (events are at most a few MB). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;
export const MAGIC = Uint8Array.of(0xf5, 0x53, 0x4c, 0x32);
const MAGIC_U32 = new DataView(MAGIC.buffer).getUint32(0, true);

export type SegmentFormat = 1 | 2;

export function checksum(payload: Uint8Array, length: number): bigint {
  return BigInt.asUintN(64, BigInt(Bun.hash.xxHash64(payload, BigInt(length))));
}

function checksumV1(payload: Uint8Array): bigint {
  return BigInt.asUintN(64, BigInt(Bun.hash.xxHash64(payload)));
}

/** Frames payloads (current format) into one buffer, ready for a single write. */
export function encodeRecords(payloads: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of payloads) total += HEADER_BYTES + p.byteLength;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of payloads) {
    view.setUint32(at, MAGIC_U32, true);
    view.setUint32(at + 4, p.byteLength, true);
    view.setBigUint64(at + 8, checksum(p, p.byteLength), true);
    out.set(p, at + HEADER_BYTES);
    at += HEADER_BYTES + p.byteLength;
  }
  return out;
}

/** Frames payloads in the old format (v1): only for tests of upgrades. */
export function encodeRecordsV1(payloads: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of payloads) total += V1_HEADER_BYTES + p.byteLength;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of payloads) {
    view.setUint32(at, p.byteLength, true);
    view.setBigUint64(at + 4, checksumV1(p), true);
    out.set(p, at + V1_HEADER_BYTES);
    at += V1_HEADER_BYTES + p.byteLength;
  }
  return out;
}

/** The format of a segment from its first bytes (at least a v1 frame's worth, or all). */
export function detectFormat(head: Uint8Array): SegmentFormat {
  if (head.byteLength < V1_HEADER_BYTES || startsWithMagic(head, 0)) return 2;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const length = view.getUint32(0, true);
  if (length > MAX_RECORD_BYTES || head.byteLength < V1_HEADER_BYTES + length) return 2;
  const payload = head.subarray(V1_HEADER_BYTES, V1_HEADER_BYTES + length);
  return view.getBigUint64(4, true) === checksumV1(payload) ? 1 : 2;
}

export function headerBytes(format: SegmentFormat): number {
  return format === 2 ? HEADER_BYTES : V1_HEADER_BYTES;
}

/** The length field of a frame header at `at` (undefined when the header is not whole). */
export function frameLength(
  buf: Uint8Array,
  at: number,
  format: SegmentFormat,
): number | undefined {
  const header = headerBytes(format);
  if (buf.byteLength - at < header) return undefined;
  return new DataView(buf.buffer, buf.byteOffset).getUint32(at + (format === 2 ? 4 : 0), true);
}

export interface ScannedRecord {
  offset: number;
  payload: Uint8Array;
}

/**
 * Why scanning stopped before the end of the buffer: the frame at `offset` is
 * - `zero`: all-zero bytes, the unwritten (preallocated) tail of a segment;
 * - `torn header` / `torn record`: cut short by the end of the buffer;
 * - `bad magic` / `bad length` / `checksum mismatch`: damaged.
 */
export type ScanProblem = {
  offset: number;
  reason: "zero" | "torn header" | "torn record" | "bad magic" | "bad length" | "checksum mismatch";
};

export interface ScanResult {
  records: ScannedRecord[];
  /** Offset (relative to `base`) after the last whole, valid record. */
  validEnd: number;
  problem?: ScanProblem;
}

function startsWithMagic(buf: Uint8Array, at: number): boolean {
  return (
    buf[at] === MAGIC[0] &&
    buf[at + 1] === MAGIC[1] &&
    buf[at + 2] === MAGIC[2] &&
    buf[at + 3] === MAGIC[3]
  );
}

/** Checks the frame at `at`: its payload when whole and valid, else why not. */
function frameAt(
  buf: Uint8Array,
  view: DataView,
  at: number,
  format: SegmentFormat,
): Uint8Array | ScanProblem["reason"] {
  const header = headerBytes(format);
  const left = buf.byteLength - at;
  if (format === 2) {
    if (buf[at] === 0 && buf[at + 1] === 0 && buf[at + 2] === 0 && buf[at + 3] === 0) {
      return left < 4 || isZero(buf, at, Math.min(buf.byteLength, at + header))
        ? "zero"
        : "bad magic";
    }
    if (left < 4) return "torn header";
    if (!startsWithMagic(buf, at)) return "bad magic";
  }
  if (left < header) return "torn header";
  const length = view.getUint32(at + (format === 2 ? 4 : 0), true);
  if (length > MAX_RECORD_BYTES) return "bad length";
  if (left - header < length) return "torn record";
  const payload = buf.subarray(at + header, at + header + length);
  const sum = view.getBigUint64(at + (format === 2 ? 8 : 4), true);
  const ok = format === 2 ? sum === checksum(payload, length) : sum === checksumV1(payload);
  return ok ? payload : "checksum mismatch";
}

/**
 * Walks the records in `buf` (which starts at file offset `base`). Stops at the first
 * frame that is not whole and valid, saying why; the caller decides whether that is
 * the end of the data, a write in progress, or damage to skip (see `resync`).
 */
export function scanRecords(
  buf: Uint8Array,
  base = 0,
  max = Number.POSITIVE_INFINITY,
  format: SegmentFormat = 2,
): ScanResult {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const header = headerBytes(format);
  const records: ScannedRecord[] = [];
  let at = 0;
  while (at < buf.byteLength && records.length < max) {
    const frame = frameAt(buf, view, at, format);
    if (typeof frame === "string") {
      return { records, validEnd: base + at, problem: { offset: base + at, reason: frame } };
    }
    records.push({ offset: base + at, payload: frame });
    at += header + frame.byteLength;
  }
  return { records, validEnd: base + at };
}

/**
 * The offset (relative to `buf`) of the first whole, valid v2 frame after `from`, or
 * undefined when there is none in `buf`.
 */
export function resync(buf: Uint8Array, from: number): number | undefined {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let at = buf.indexOf(MAGIC[0]!, from + 1); at >= 0; at = buf.indexOf(MAGIC[0]!, at + 1)) {
    if (startsWithMagic(buf, at) && typeof frameAt(buf, view, at, 2) !== "string") return at;
  }
  return undefined;
}

/** Whether bytes `[from, to)` of `buf` are all zero. */
export function isZero(buf: Uint8Array, from = 0, to = buf.byteLength): boolean {
  let at = from;
  // Four bytes at a time where aligned; the ends byte by byte.
  while (at < to && (buf.byteOffset + at) % 4 !== 0) if (buf[at++] !== 0) return false;
  const words = Math.floor((to - at) / 4);
  if (words > 0) {
    const view = new Uint32Array(buf.buffer, buf.byteOffset + at, words);
    for (let i = 0; i < words; i++) if (view[i] !== 0) return false;
    at += words * 4;
  }
  while (at < to) if (buf[at++] !== 0) return false;
  return true;
}
