import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { BUCKET_ENTRIES, FilterSegment } from "./filter.ts";

/**
 * The stored copies of the filter's segments: one plain file per segment in
 * `<dataDir>/dedup-filter/`, beside dedup.db, read at start straight into the shared
 * buffer the segment lives in (one pass over its bytes, no SQLite page buffer or
 * intermediate array on the way).
 *
 * A file is a 64-byte header, the segment's entries, then its stash ([hash, tag] pairs
 * as float64). The header holds the segment's number, its bucket count, the last slot
 * the copy covers, the entries in use, the store's filter generation (a random number
 * kept in dedup.db's meta and replaced whenever its keys are discarded) and a checksum
 * (wyhash) of the header and body. A copy is written to a temporary file, fsync'ed and
 * renamed over the old one, so a crash leaves either copy whole; a file that is torn,
 * corrupt, of another segment or of another generation is not used (the caller then
 * falls back to a copy in dedup.db, or rebuilds the segment from the keys on disk).
 */

const MAGIC = 0x534c4654; // "SLFT"
const FORMAT = 1;
export const HEADER_BYTES = 64;
/** Header bytes covered by the checksum (everything before it). */
const CHECKED = 56;

export function filterDir(dataDir: string): string {
  return join(dataDir, "dedup-filter");
}

function segmentFile(dir: string, seg: number): string {
  return join(dir, `segment-${seg}`);
}

export interface FilterCopy {
  seg: number;
  buckets: number;
  covered: number;
  used: number;
  generation: number;
}

/** A fresh generation: 48 random bits (a float64 holds them exactly). */
export function newGeneration(): number {
  const b = crypto.getRandomValues(new Uint32Array(2));
  return b[0]! * 65_536 + (b[1]! & 0xffff);
}

function checksum(header: Uint8Array, entries: Uint8Array, stash: Uint8Array): bigint {
  const body = Bun.hash.wyhash(entries);
  const withStash = Bun.hash.wyhash(stash, body);
  return Bun.hash.wyhash(header.subarray(0, CHECKED), withStash);
}

/**
 * Writes one segment's copy crash-safely. `entries` must not change while this runs
 * (the writer passes a private copy of the shared table, so the checksum matches the
 * bytes written).
 */
export function writeFilterCopy(
  dir: string,
  copy: FilterCopy,
  entries: Uint8Array,
  stash: readonly number[],
): void {
  // Not recursive: a data dir removed under a store still running is not made again.
  if (!existsSync(dir)) {
    mkdirSync(dir);
    syncDir(dirname(dir));
  }
  const stashBytes = new Uint8Array(Float64Array.from(stash).buffer);
  const header = new Uint8Array(HEADER_BYTES);
  const v = new DataView(header.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, FORMAT, true);
  v.setUint32(8, copy.seg, true);
  v.setUint32(12, copy.buckets, true);
  v.setFloat64(16, copy.covered, true);
  v.setFloat64(24, copy.used, true);
  v.setFloat64(32, copy.generation, true);
  v.setFloat64(40, stash.length / 2, true);
  v.setFloat64(48, entries.byteLength, true);
  v.setBigUint64(CHECKED, checksum(header, entries, stashBytes), true);
  const file = segmentFile(dir, copy.seg);
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    writeAll(fd, header);
    writeAll(fd, entries);
    writeAll(fd, stashBytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  // The new name is durable only once the folder is synced: without it a power loss may
  // bring back the old copy (or none), and its segment is rebuilt from the keys (slow).
  syncDir(dir);
}

function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.byteLength) at += writeSync(fd, bytes, at, bytes.byteLength - at);
}

function readAll(fd: number, into: Uint8Array, position: number): boolean {
  let at = 0;
  while (at < into.byteLength) {
    const n = readSync(fd, into, at, into.byteLength - at, position + at);
    if (n === 0) return false;
    at += n;
  }
  return true;
}

export interface LoadedCopy extends FilterCopy {
  table: FilterSegment;
  stash: number[];
}

/**
 * Reads segment `seg`'s copy into a new shared buffer. Returns undefined when there is
 * none, and the reason when there is one that cannot be used.
 */
export function readFilterCopy(
  dir: string,
  seg: number,
  generation: number,
): LoadedCopy | { rejected: string } | undefined {
  let fd: number;
  try {
    fd = openSync(segmentFile(dir, seg), "r");
  } catch {
    return undefined;
  }
  try {
    return readOpened(fd, seg, generation);
  } catch (err) {
    // Unreadable (EIO, a folder by that name): not used, like a torn one.
    return { rejected: `unreadable: ${(err as Error).message}` };
  } finally {
    closeSync(fd);
  }
}

function readOpened(
  fd: number,
  seg: number,
  generation: number,
): LoadedCopy | { rejected: string } {
  const size = fstatSync(fd).size;
  const header = new Uint8Array(HEADER_BYTES);
  if (size < HEADER_BYTES || !readAll(fd, header, 0)) return { rejected: "torn header" };
  const v = new DataView(header.buffer);
  if (v.getUint32(0, true) !== MAGIC || v.getUint32(4, true) !== FORMAT) {
    return { rejected: "not a filter copy" };
  }
  const buckets = v.getUint32(12, true);
  const stashPairs = v.getFloat64(40, true);
  const entryBytes = v.getFloat64(48, true);
  if (
    v.getUint32(8, true) !== seg ||
    entryBytes !== buckets * BUCKET_ENTRIES * 4 ||
    !Number.isSafeInteger(stashPairs) ||
    size !== HEADER_BYTES + entryBytes + stashPairs * 16
  ) {
    return { rejected: "torn or of another segment" };
  }
  if (v.getFloat64(32, true) !== generation) return { rejected: "of another generation" };
  const buffer = new SharedArrayBuffer(entryBytes);
  const entries = new Uint8Array(buffer);
  const stashBytes = new Uint8Array(stashPairs * 16);
  if (!readAll(fd, entries, HEADER_BYTES) || !readAll(fd, stashBytes, HEADER_BYTES + entryBytes)) {
    return { rejected: "torn" };
  }
  if (checksum(header, entries, stashBytes) !== v.getBigUint64(CHECKED, true)) {
    return { rejected: "checksum mismatch" };
  }
  const used = v.getFloat64(24, true);
  return {
    seg,
    buckets,
    covered: v.getFloat64(16, true),
    used,
    generation,
    table: new FilterSegment(buffer, used),
    stash: [...new Float64Array(stashBytes.buffer)],
  };
}
