import type { LogCursor } from "../log/stream.ts";
import type { Geometry, SlotRange } from "./geometry.ts";

/** What the writer thread is started with (its `workerData`). */
export interface WriterInit {
  path: string;
  /** Where the filter's copies go (filter-file.ts), and the generation they carry. */
  filterDir: string;
  generation: number;
  geometry: Geometry;
  /** The filter's segments as the main thread loaded them. */
  segments: SharedArrayBuffer[];
  /** Per segment, the last slot its stored copy covers (-1: none). */
  covered: number[];
  /** Some segments came from copies in dedup.db's `filter` table: copy them to files. */
  fromTable: boolean;
  /** Keys written since the segments' copies (they were re-read at start). */
  keysSinceSnapshot: number;
  /** Keys in live runs on disk (sizes the snapshot interval). */
  liveKeys: number;
  /** The filter is copied to disk at most once per this many keys written. */
  snapshotMinKeys: number;
}

/**
 * Keys as a message: numbers in typed arrays (moved, not copied) and the messageIds as
 * one string with their lengths, which a structured clone copies in one go instead of
 * one string at a time.
 */
export interface KeyBatch {
  hashes: Float64Array<ArrayBuffer>;
  ats: Float64Array<ArrayBuffer>;
  /** Index into `sourceNames` per key. */
  sources: Uint32Array<ArrayBuffer>;
  sourceNames: string[];
  /** The messageIds, concatenated; `lengths` cuts them apart. */
  text: string;
  lengths: Uint32Array<ArrayBuffer>;
}

/** Main thread to writer, handled strictly in order. */
export type ToWriter =
  /** Keys of `slot` (not yet complete): appended to the slot's pending run. */
  | ({ t: "keys"; slot: number } & KeyBatch)
  /** `slot` is complete: write its run, then move the checkpoint to `upTo`. */
  | { t: "seal"; slot: number; upTo: LogCursor | null }
  /** Drops a slice that left the window. */
  | { t: "drop"; slice: number }
  /** Fills `buffer` (a resized segment) from the keys on disk of live slots. */
  | { t: "rebuild"; seg: number; buffer: SharedArrayBuffer; range: SlotRange }
  /**
   * Writes every pending run and a copy of every segment with its stash ([hash, tag]
   * pairs, per segment), then closes the file.
   */
  | { t: "close"; stashes: number[][] };

/** Writer to main thread. */
export type FromWriter =
  | { t: "ready" }
  | { t: "committed"; slot: number; slice: number; keys: number; upTo: LogCursor | null }
  | { t: "rebuilt"; seg: number; used: number; stash: number[] }
  | { t: "failed"; message: string }
  /** A write worked again after a failure. */
  | { t: "recovered" }
  | { t: "closed" };
