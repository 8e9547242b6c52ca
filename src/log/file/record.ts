/**
 * Record framing for segment files.
 *
 * Current format (v3), written by this version:
 *   u32 magic 0xF5 'S' 'L' '3' | u32 LE body length | u64 LE XXH64(body, seed = length) | body
 *   body: u8 type length | u8 0 | u16 LE sourceId length | f64 LE receivedAt (ms, 0 unknown)
 *         | sourceId (UTF-8) | type (UTF-8) | payload
 * sourceId, type and receivedAt travel beside the payload, so a reader filters by source
 * or time without parsing the event (issue 14). The checksum covers them too.
 *
 * v2 (still read; a v3 frame may follow v2 frames in the same segment, and a bare
 * payload without sourceId and type is still written as v2):
 *   u32 magic 0xF5 'S' 'L' '2' | u32 LE payload length | u64 LE XXH64(payload, seed = length) | payload
 * The magic lets a reader resynchronise after a corrupt record: it scans forward to the
 * next magic whose frame checks out. Its first byte, 0xF5, never occurs in UTF-8 (every
 * payload is JSON text, sourceIds and types are UTF-8 too), so a payload cannot fake a
 * frame start by itself. The checksum is seeded with the length, so a damaged length is
 * caught too. A frame whose magic bytes are all zero is the zero-filled, not yet
 * written tail of a segment.
 *
 * Old format (v1), still read in segments written before the marker:
 *   u32 LE payload length | u64 LE XXH64(payload) | payload
 * A v1 segment has no marker to resynchronise on: after a corrupt record, the rest of
 * the segment is skipped (and reported). A segment is v1 when its first bytes are a
 * valid v1 frame (a marked segment starts with the magic, whose u32 value is far past
 * any record length); new records always go to marked segments.
 */
export const HEADER_BYTES = 16;
export const V1_HEADER_BYTES = 12;
/** A record longer than this is treated as corruption (events are at most a few MB). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;
/** The v2 marker; v3's differs in its last byte only (`MAGIC_V3`). */
export const MAGIC = Uint8Array.of(0xf5, 0x53, 0x4c, 0x32);
export const MAGIC_V3 = Uint8Array.of(0xf5, 0x53, 0x4c, 0x33);
const MAGIC_U32 = new DataView(MAGIC.buffer).getUint32(0, true);
const MAGIC_V3_U32 = new DataView(MAGIC_V3.buffer).getUint32(0, true);
/** v3's fixed part of the body: type length, a zero, sourceId length, receivedAt. */
export const META_BYTES = 12;
export const MAX_SOURCE_ID_BYTES = 0xffff;
export const MAX_TYPE_BYTES = 0xff;

/** 1: the old unmarked frames; 2: marked frames (v2 and v3, mixed). */
export type SegmentFormat = 1 | 2;

/** One record to frame with its sourceId and type (v3). */
export interface FrameEntry {
  sourceId: string;
  type: string;
  /** The event's JSON text (written into the frame as UTF-8, with no copy before) or its bytes. */
  payload: Uint8Array | string;
  /** When the event was received (ms since the epoch); unknown when absent. */
  receivedAt?: number;
}

/** Frames ready for one write, and each frame's size in bytes (in order). */
export interface Framed {
  bytes: Uint8Array;
  sizes: number[];
}

export function checksum(payload: Uint8Array, length: number): bigint {
  // Bun's xxHash64 is an unsigned 64-bit BigInt already: no conversion per record.
  return Bun.hash.xxHash64(payload, BigInt(length)) as bigint;
}

function checksumV1(payload: Uint8Array): bigint {
  return BigInt.asUintN(64, BigInt(Bun.hash.xxHash64(payload)));
}

/**
 * Frames records into one buffer, ready for a single write: entries as v3 (a string
 * payload is encoded straight into the frame: the only copy of it), bare payloads as v2.
 */
export function encodeFrames(records: readonly (FrameEntry | Uint8Array)[]): Framed {
  let bound = 0;
  for (const r of records) {
    if (r instanceof Uint8Array) bound += HEADER_BYTES + r.byteLength;
    else {
      // At most 3 UTF-8 bytes per UTF-16 unit.
      const p = r.payload;
      bound += HEADER_BYTES + META_BYTES + 3 * (r.sourceId.length + r.type.length);
      // One event's text is measured (a native count): an append's buffer sized for the
      // worst case was three times the record, and single events paid for it in
      // allocation (7.5% of their profile). A batch's texts are not counted one by one.
      bound +=
        typeof p === "string"
          ? records.length === 1
            ? Buffer.byteLength(p, "utf8")
            : 3 * p.length
          : p.byteLength;
    }
  }
  // A small append gets an ArrayBuffer of its own, viewed three ways: a small Buffer's
  // `.buffer` made the engine move its bytes out of line first (4% of a single event's
  // profile). A larger one (a batch) is framed in the scratch buffer and copied out at
  // its exact size (see `scratchFor`).
  const ab = bound <= SMALL_APPEND_BYTES ? new ArrayBuffer(bound) : undefined;
  const { buf, out, view } = ab
    ? { buf: Buffer.from(ab), out: new Uint8Array(ab), view: new DataView(ab) }
    : scratchFor(bound);
  const sizes: number[] = new Array(records.length);
  let at = 0;
  let source: { text: string; bytes: Uint8Array } | undefined;
  let type: { text: string; bytes: Uint8Array } | undefined;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const start = at;
    if (r instanceof Uint8Array) {
      out.set(r, at + HEADER_BYTES);
      view.setUint32(at, MAGIC_U32, true);
      view.setUint32(at + 4, r.byteLength, true);
      view.setBigUint64(at + 8, checksum(r, r.byteLength), true);
      at += HEADER_BYTES + r.byteLength;
    } else {
      // Sources and types are few: each encoded once per process (a batch's records
      // mostly share them, so the last ones are checked first).
      if (source?.text !== r.sourceId) source = utf8(r.sourceId);
      if (type?.text !== r.type) type = utf8(r.type);
      const sourceBytes = source.bytes.byteLength;
      const typeBytes = type.bytes.byteLength;
      if (sourceBytes > MAX_SOURCE_ID_BYTES || typeBytes > MAX_TYPE_BYTES) {
        throw new Error(`sourceId or type too long for a log record: ${r.sourceId} ${r.type}`);
      }
      const body = at + HEADER_BYTES;
      let p = body + META_BYTES;
      // Byte by byte: a typed array's set() costs more than a few bytes' loop.
      const sb = source.bytes;
      for (let k = 0; k < sourceBytes; k++) out[p + k] = sb[k]!;
      p += sourceBytes;
      const tb = type.bytes;
      for (let k = 0; k < typeBytes; k++) out[p + k] = tb[k]!;
      p += typeBytes;
      if (typeof r.payload === "string") p += buf.write(r.payload, p, "utf8");
      else {
        out.set(r.payload, p);
        p += r.payload.byteLength;
      }
      out[body] = typeBytes;
      out[body + 1] = 0;
      view.setUint16(body + 2, sourceBytes, true);
      view.setFloat64(body + 4, r.receivedAt ?? 0, true);
      const length = p - body;
      view.setUint32(at, MAGIC_V3_U32, true);
      view.setUint32(at + 4, length, true);
      view.setBigUint64(at + 8, checksum(out.subarray(body, p), length), true);
      at = p;
    }
    sizes[i] = at - start;
  }
  // The scratch is framed into again by the next call: the caller gets a copy.
  return { bytes: ab ? out.subarray(0, at) : out.slice(0, at), sizes };
}

/** Appends up to this size get a fresh ArrayBuffer (see `encodeFrames`). */
const SMALL_APPEND_BYTES = 64 * 1024;
/** The largest scratch buffer kept between calls; a larger append gets one of its own. */
const MAX_SCRATCH_BYTES = 4 * 1024 * 1024;

/** Views of one buffer to frame into. */
interface Scratch {
  buf: Buffer;
  out: Uint8Array;
  view: DataView;
}
let scratch: Scratch | undefined;

/**
 * A buffer of at least `bound` bytes that only `encodeFrames` uses, and only until it
 * returns (no await in between), so it is reused by every batch. A batch's bound is 3
 * bytes per UTF-16 unit of its texts, about three times what its frames take: a fresh
 * buffer of that size per batch was ~1 MB of native memory for ~340 kB of frames (500
 * events, bench/RESULTS.md "Sixth session: frames"), freed only when a collection swept
 * it. The frames are copied out at their exact size, so what outlives the call (the
 * pending write, its group) never shares these bytes.
 */
function scratchFor(bound: number): Scratch {
  if (scratch !== undefined && scratch.out.byteLength >= bound) return scratch;
  // A power of two: batches of slowly growing size do not each make a new one.
  const size = bound <= MAX_SCRATCH_BYTES ? 2 ** Math.ceil(Math.log2(bound)) : bound;
  const buf = Buffer.allocUnsafeSlow(size);
  const views = {
    buf,
    // Views of the plain kind: a Buffer's subarray costs several times a Uint8Array's.
    out: new Uint8Array(buf.buffer, buf.byteOffset, size),
    view: new DataView(buf.buffer, buf.byteOffset, size),
  };
  if (size <= MAX_SCRATCH_BYTES) scratch = views;
  return views;
}

const encoder = new TextEncoder();
const encoded = new Map<string, { text: string; bytes: Uint8Array }>();

/** `text` as UTF-8, from a cache of at most 4096 strings (sourceIds and event types). */
function utf8(text: string): { text: string; bytes: Uint8Array } {
  let e = encoded.get(text);
  if (e === undefined) {
    if (encoded.size >= 4096) encoded.clear();
    e = { text, bytes: encoder.encode(text) };
    encoded.set(text, e);
  }
  return e;
}

/** Frames payloads as v2 into one buffer (records without sourceId and type). */
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
  /** The whole frame's size (header, meta and payload). */
  bytes: number;
  payload: Uint8Array;
  /** Carried by v3 frames (undefined in older ones: read them from the payload). */
  sourceId?: string;
  type?: string;
  /** v3: when the event was received (ms), when the appender knew it. */
  receivedAt?: number;
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

/** Whether a marker (v2 or v3) starts at `at`. */
export function startsWithMagic(buf: Uint8Array, at: number): boolean {
  return (
    buf[at] === MAGIC[0] &&
    buf[at + 1] === MAGIC[1] &&
    buf[at + 2] === MAGIC[2] &&
    (buf[at + 3] === MAGIC[3] || buf[at + 3] === MAGIC_V3[3])
  );
}

/** A valid frame's contents (its offset is the caller's). */
type Frame = Omit<ScannedRecord, "offset">;

const decoder = new TextDecoder();

/** Checks the frame at `at`: its contents when whole and valid, else why not. */
function frameAt(
  buf: Uint8Array,
  view: DataView,
  at: number,
  format: SegmentFormat,
): Frame | ScanProblem["reason"] {
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
  const body = buf.subarray(at + header, at + header + length);
  const sum = view.getBigUint64(at + (format === 2 ? 8 : 4), true);
  const ok = format === 2 ? sum === checksum(body, length) : sum === checksumV1(body);
  if (!ok) return "checksum mismatch";
  const bytes = header + length;
  if (format === 1 || buf[at + 3] === MAGIC[3]) return { bytes, payload: body };
  // v3: the checksum held, so the meta was written as it reads.
  const b = at + header;
  const typeBytes = buf[b]!;
  const sourceBytes = view.getUint16(b + 2, true);
  const metaEnd = META_BYTES + sourceBytes + typeBytes;
  if (metaEnd > length) return "bad length";
  const receivedAt = view.getFloat64(b + 4, true);
  const s = b + META_BYTES;
  return {
    bytes,
    payload: body.subarray(metaEnd),
    sourceId: decoder.decode(buf.subarray(s, s + sourceBytes)),
    type: decoder.decode(buf.subarray(s + sourceBytes, s + sourceBytes + typeBytes)),
    ...(receivedAt > 0 ? { receivedAt } : {}),
  };
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
  const records: ScannedRecord[] = [];
  let at = 0;
  while (at < buf.byteLength && records.length < max) {
    const frame = frameAt(buf, view, at, format);
    if (typeof frame === "string") {
      return { records, validEnd: base + at, problem: { offset: base + at, reason: frame } };
    }
    records.push({ offset: base + at, ...frame });
    at += frame.bytes;
  }
  return { records, validEnd: base + at };
}

/**
 * The offset (relative to `buf`) of the first whole, valid marked frame after `from`, or
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
