/**
 * Record framing for segment files:
 *   u32 LE payload length | u64 LE XXH64(payload) | payload
 * XXH64 is a 64-bit checksum (stronger than CRC32C against torn or random writes, as
 * RocksDB offers it for the same job), computed natively by Bun.
 */
export const HEADER_BYTES = 12;
/** A record longer than this is treated as corruption (events are at most a few MB). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

export function checksum(payload: Uint8Array): bigint {
  return BigInt.asUintN(64, BigInt(Bun.hash.xxHash64(payload)));
}

/** Frames payloads into one buffer, ready for a single write. */
export function encodeRecords(payloads: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of payloads) total += HEADER_BYTES + p.byteLength;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of payloads) {
    view.setUint32(at, p.byteLength, true);
    view.setBigUint64(at + 4, checksum(p), true);
    out.set(p, at + HEADER_BYTES);
    at += HEADER_BYTES + p.byteLength;
  }
  return out;
}

export interface ScannedRecord {
  offset: number;
  payload: Uint8Array;
}

export interface ScanResult {
  records: ScannedRecord[];
  /** Offset (relative to `base`) after the last whole, valid record. */
  validEnd: number;
  /** Why scanning stopped before the end of the buffer, if it did. */
  problem?: { offset: number; reason: string };
}

/**
 * Walks the records in `buf` (which starts at file offset `base`). Stops at the first
 * torn or corrupt record; everything from there on is not to be served.
 */
export function scanRecords(buf: Uint8Array, base = 0, max = Number.POSITIVE_INFINITY): ScanResult {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: ScannedRecord[] = [];
  let at = 0;
  while (at < buf.byteLength && records.length < max) {
    if (buf.byteLength - at < HEADER_BYTES) {
      return {
        records,
        validEnd: base + at,
        problem: { offset: base + at, reason: "torn header" },
      };
    }
    const length = view.getUint32(at, true);
    if (length > MAX_RECORD_BYTES) {
      return { records, validEnd: base + at, problem: { offset: base + at, reason: "bad length" } };
    }
    if (buf.byteLength - at - HEADER_BYTES < length) {
      return {
        records,
        validEnd: base + at,
        problem: { offset: base + at, reason: "torn record" },
      };
    }
    const payload = buf.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length);
    if (view.getBigUint64(at + 4, true) !== checksum(payload)) {
      return {
        records,
        validEnd: base + at,
        problem: { offset: base + at, reason: "checksum mismatch" },
      };
    }
    records.push({ offset: base + at, payload });
    at += HEADER_BYTES + length;
  }
  return { records, validEnd: base + at };
}
