import type { Database, Statement } from "bun:sqlite";
import {
  BUCKET_ENTRIES,
  bucketsFor,
  FilterSegment,
  MAX_LOAD,
  MIN_BUCKETS,
  Placement,
  SEGMENTS,
} from "./filter.ts";
import { readFilterCopy } from "./filter-file.ts";
import { type SlotRange, slotOfTag, TAGS } from "./geometry.ts";
import { hashesTable, hashesTables, keysTable } from "./schema.ts";

const TWO_POW_47 = 2 ** 47;

/**
 * Inserts into `table` the hash of every key of segment `seg` in the live runs on disk.
 * Used to fill a resized segment (writer thread) and a segment with no usable copy at
 * start. Reads only the segment's rows: they are a contiguous hash range in each run.
 */
export function fillFromRuns(
  db: Database,
  seg: number,
  table: FilterSegment,
  range: SlotRange,
): number {
  const p = new Placement();
  const lo = seg * TWO_POW_47;
  const hi = lo + TWO_POW_47 - 1;
  const runs = db
    .query<{ slot: number; slice: number }, [number]>(
      "SELECT slot, slice FROM runs WHERE slot >= ? ORDER BY slot",
    )
    .all(range.first);
  const selects = new Map<number, Statement<{ h: number }, [number, number, number]>>();
  let n = 0;
  for (const r of runs) {
    let select = selects.get(r.slice);
    if (!select) {
      select = db.query<{ h: number }, [number, number, number]>(
        `SELECT h FROM ${keysTable(r.slice)} WHERE slot = ? AND h BETWEEN ? AND ?`,
      );
      selects.set(r.slice, select);
    }
    const tag = r.slot & (TAGS - 1);
    for (const row of select.iterate(r.slot, lo, hi)) {
      table.insert(p.of(row.h), row.h, tag, range);
      n++;
    }
  }
  return n;
}

/** The lowest live slot among a stash's [hash, tag] pairs (+Infinity when there is none). */
export function lowestSlot(stash: number[], range: SlotRange): number {
  let floor = Number.POSITIVE_INFINITY;
  for (let i = 1; i < stash.length; i += 2) {
    floor = Math.min(floor, slotOfTag(stash[i]!, range.current));
  }
  return floor;
}

/** The filter as loaded at start. */
export interface LoadedFilter {
  segments: FilterSegment[];
  /** Per segment, the last slot its stored copy covers (-1: no copy). */
  covered: number[];
  /** Keys re-read from disk because no copy covered them. */
  reread: number;
  /** Segments loaded from a copy in dedup.db's `filter` table (written before the files). */
  fromTable: number;
  /** Segment files that could not be used, with the reason (the segment fell back). */
  rejected: string[];
  /** The slots at start (see `loadFilter`'s `rangeAfter`). */
  range: SlotRange;
  /** Where the time went, in ms: reading copies, re-reading runs, rebuilding segments. */
  ms: { copies: number; reread: number; rebuild: number };
}

/** Where the stored copies of the filter are (filter-file.ts). */
export interface FilterFiles {
  dir: string;
  generation: number;
}

/**
 * Loads each segment's stored copy (its file, else a copy in dedup.db's `filter` table
 * as stores before the files kept them), then adds the keys of runs written after the
 * copy (a crash between copies). A segment whose copy is missing, unusable, or too small
 * for what has to be added, is rebuilt from its rows on disk instead.
 *
 * `rangeAfter` gives the live slots once the copies are read, from the last slot any of
 * them covers: new keys must go to a later slot (a copy may cover more runs than
 * dedup.db holds if the database lost its last commits and the copy did not).
 */
export function loadFilter(
  db: Database,
  files: FilterFiles,
  rangeAfter: (lastCovered: number) => SlotRange,
): LoadedFilter {
  const t0 = performance.now();
  const segments: FilterSegment[] = [];
  const covered: number[] = [];
  const rejected: string[] = [];
  let fromTable = 0;
  for (let s = 0; s < SEGMENTS; s++) {
    const copy = readFilterCopy(files.dir, s, files.generation);
    if (copy && "table" in copy) {
      copy.table.stash = copy.stash;
      segments.push(copy.table);
      covered.push(copy.covered);
    } else {
      if (copy) rejected.push(`segment ${s}: ${copy.rejected}`);
      segments.push(FilterSegment.allocate(MIN_BUCKETS));
      covered.push(-1);
    }
  }
  // One stored copy at a time: `.all()` would hold every copy (the filter's size again)
  // beside the tables they are copied into.
  const rows = db.query<
    {
      seg: number;
      buckets: number;
      covered: number;
      entries: Uint8Array;
      stash: Uint8Array | null;
    },
    []
  >("SELECT seg, buckets, covered, entries, stash FROM filter");
  for (const row of rows.iterate()) {
    const s = row.seg;
    if (
      s < 0 ||
      s >= SEGMENTS ||
      covered[s]! >= 0 ||
      row.entries.byteLength !== row.buckets * BUCKET_ENTRIES * 4
    ) {
      continue;
    }
    const buffer = new SharedArrayBuffer(row.entries.byteLength);
    new Uint8Array(buffer).set(row.entries);
    const table = new FilterSegment(buffer);
    table.used = table.countUsed();
    if (row.stash) {
      const bytes = row.stash.slice();
      table.stash = [...new Float64Array(bytes.buffer, 0, bytes.byteLength / 8)];
    }
    segments[s] = table;
    covered[s] = row.covered;
    fromTable++;
  }
  const range = rangeAfter(Math.max(-1, ...covered));
  const t1 = performance.now();

  // Keys written after each segment's copy (a crash between copies) go in directly; a
  // segment left too full by them, or with no copy at all, is rebuilt from its rows.
  const live = db
    .query<{ n: number | null }, [number]>("SELECT sum(keys) AS n FROM runs WHERE slot >= ?")
    .get(range.first);
  const perSegment = (live?.n ?? 0) / SEGMENTS;
  const withCopy = covered.filter((c) => c >= 0);
  let reread = 0;
  if (withCopy.length > 0) {
    const from = Math.max(range.first - 1, Math.min(...withCopy));
    reread += rereadRuns(db, from, segments, covered, range);
  }
  const t2 = performance.now();
  for (let s = 0; s < SEGMENTS; s++) {
    const table = segments[s]!;
    const overfull = table.used > table.capacity * MAX_LOAD || table.stash.length > 32;
    if (covered[s]! >= 0 && !overfull) continue;
    const keys = covered[s]! >= 0 ? table.countLive(range) : perSegment * 1.1;
    const fresh = FilterSegment.allocate(Math.max(MIN_BUCKETS, bucketsFor(keys)));
    reread += fillFromRuns(db, s, fresh, range);
    segments[s] = fresh;
    covered[s] = -1;
  }
  const t3 = performance.now();
  return {
    segments,
    covered,
    reread,
    fromTable,
    rejected,
    range,
    ms: { copies: t1 - t0, reread: t2 - t1, rebuild: t3 - t2 },
  };
}

/**
 * Adds to each segment the keys of the runs after `from` that its copy does not cover:
 * each run's hashes blob (8 bytes a key), or, for a run written before there were
 * blobs, its rows. Returns the keys added.
 */
function rereadRuns(
  db: Database,
  from: number,
  segments: FilterSegment[],
  covered: number[],
  range: SlotRange,
): number {
  const p = new Placement();
  const blobs = hashesTables(db);
  const blobOf = new Map<number, Statement<{ h: Uint8Array }, [number]>>();
  const rowsOf = new Map<number, Statement<{ h: number }, [number]>>();
  let n = 0;
  const add = (h: number, slot: number, tag: number) => {
    const s = p.of(h).seg;
    if (covered[s]! < 0 || slot <= covered[s]!) return;
    segments[s]!.insert(p, h, tag, range);
    n++;
  };
  const runs = db
    .query<{ slot: number; slice: number }, [number]>(
      "SELECT slot, slice FROM runs WHERE slot > ? ORDER BY slot",
    )
    .all(from);
  /** Runs read from their blobs: added segment by segment below. */
  const sorted: { slot: number; tag: number; hashes: Float64Array; ends: number[] }[] = [];
  for (const { slot, slice } of runs) {
    const tag = slot & (TAGS - 1);
    let blob: Uint8Array | undefined;
    if (blobs.has(slice)) {
      let select = blobOf.get(slice);
      if (!select) {
        select = db.query(`SELECT h FROM ${hashesTable(slice)} WHERE slot = ?`);
        blobOf.set(slice, select);
      }
      blob = select.get(slot)?.h;
      // A Float64Array view needs an offset that is a multiple of 8.
      if (blob && blob.byteOffset % 8 !== 0) blob = blob.slice();
    }
    if (blob) {
      const hashes = new Float64Array(blob.buffer, blob.byteOffset, blob.byteLength / 8);
      sorted.push({ slot, tag, hashes, ends: segmentEnds(hashes) });
      continue;
    }
    let select = rowsOf.get(slice);
    if (!select) {
      select = db.query(`SELECT h FROM ${keysTable(slice)} WHERE slot = ?`);
      rowsOf.set(slice, select);
    }
    for (const row of select.iterate(slot)) add(row.h, slot, tag);
  }
  // A blob's hashes are sorted, so each segment's keys are one stretch of it. Taken
  // segment by segment, the inserts of all runs stay within one segment's table (a few
  // MB, which the caches hold) instead of landing all over the whole filter.
  for (let s = 0; s < SEGMENTS; s++) {
    const c = covered[s]!;
    if (c < 0) continue;
    const table = segments[s]!;
    for (const run of sorted) {
      if (run.slot <= c) continue;
      const { hashes, tag } = run;
      const end = run.ends[s]!;
      for (let i = s === 0 ? 0 : run.ends[s - 1]!; i < end; i++) {
        const h = hashes[i]!;
        table.insert(p.of(h), h, tag, range);
      }
      n += end - (s === 0 ? 0 : run.ends[s - 1]!);
    }
  }
  return n;
}

/** Per segment, where its stretch of the sorted `hashes` ends (binary searches). */
function segmentEnds(hashes: Float64Array): number[] {
  const ends: number[] = [];
  let lo = 0;
  for (let s = 0; s < SEGMENTS; s++) {
    const limit = (s + 1) * TWO_POW_47;
    let hi = hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid]! < limit) lo = mid + 1;
      else hi = mid;
    }
    ends.push(lo);
  }
  return ends;
}
