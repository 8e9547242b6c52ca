import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Geometry } from "../../src/dedup/geometry.ts";
import type { DedupKey } from "../../src/dedup/interface.ts";

export const BATCH = 500;

/**
 * Slots of 5 s (2.75 s by default for 24 h): a process started right after the one
 * before it then mostly lands in the slot of that one's last run, the case that once hid
 * keys; a longer round still crosses into the next slot.
 */
export const GEOMETRY: Geometry = { runMs: 5000, slotsPerSlice: 720 };
export const WINDOW_SECONDS = 86_400;

/** The keys of batch `b`: the same on every call. */
export function batchKeys(b: number): DedupKey[] {
  return Array.from({ length: BATCH }, (_, i) => ({ sourceId: "web", messageId: `k${b}-${i}` }));
}

/** Batch numbers in DIR/log.txt (a torn last line, cut by the kill, is not a batch). */
export function loggedBatches(dir: string): number[] {
  const path = join(dir, "log.txt");
  if (!existsSync(path)) return [];
  const text = readFileSync(path, "utf8");
  // Whole lines only: the last piece is empty, or a line the kill cut short.
  return text.split("\n").slice(0, -1).map(Number);
}
