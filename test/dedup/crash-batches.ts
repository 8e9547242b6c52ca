import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { DedupKey } from "../../src/dedup/interface.ts";

export const BATCH = 500;

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
