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
import { type SlotRange, slotOfTag, TAGS } from "./geometry.ts";
import { keysTable, keysTables } from "./schema.ts";

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
}

/**
 * Loads each segment's stored copy, then adds the keys of runs written after the copy
 * (a crash between copies). A segment whose copy is missing, or too small for what has
 * to be added, is rebuilt from its rows on disk instead.
 */
export function loadFilter(db: Database, range: SlotRange): LoadedFilter {
  const segments: FilterSegment[] = [];
  const covered: number[] = [];
  const rows = db
    .query<
      {
        seg: number;
        buckets: number;
        covered: number;
        entries: Uint8Array;
        stash: Uint8Array | null;
      },
      []
    >("SELECT seg, buckets, covered, entries, stash FROM filter")
    .all();
  const stored = new Map(rows.map((r) => [r.seg, r]));
  for (let s = 0; s < SEGMENTS; s++) {
    const row = stored.get(s);
    if (row && row.entries.byteLength === row.buckets * BUCKET_ENTRIES * 4) {
      const buffer = new SharedArrayBuffer(row.entries.byteLength);
      new Uint8Array(buffer).set(row.entries);
      const table = new FilterSegment(buffer);
      table.used = table.countUsed();
      if (row.stash) {
        const bytes = row.stash.slice();
        table.stash = [...new Float64Array(bytes.buffer, 0, bytes.byteLength / 8)];
      }
      segments.push(table);
      covered.push(row.covered);
    } else {
      segments.push(FilterSegment.allocate(MIN_BUCKETS));
      covered.push(-1);
    }
  }
  rows.length = 0;

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
    const p = new Placement();
    for (const slice of keysTables(db)) {
      const select = db.query<{ slot: number; h: number }, [number]>(
        `SELECT slot, h FROM ${keysTable(slice)} WHERE slot > ?`,
      );
      for (const row of select.iterate(from)) {
        const s = p.of(row.h).seg;
        if (covered[s]! < 0 || row.slot <= covered[s]!) continue;
        segments[s]!.insert(p, row.h, row.slot & (TAGS - 1), range);
        reread++;
      }
    }
  }
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
  return { segments, covered, reread };
}
