import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { DedupKey } from "../../src/dedup/interface.ts";

export const BATCH = 500;

export const WINDOW_SECONDS = 86_400;

/**
 * The store's clock in a process that started at `from` (ms): it goes on from there, so
 * that time in the test goes on from where the process before left it (not from the
 * wall clock, which goes on while no process runs), four times as fast as the wall
 * clock, so that a short process still writes a few runs (2.75 s slots).
 */
export function clockFrom(from: number): () => number {
  const started = Date.now();
  return () => from + 4 * (Date.now() - started);
}

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
