import { expect, test } from "bun:test";
import { MIN_PINNED, pacing, Watermark } from "../../src/dedup/gc.ts";

const MB = 1024 * 1024;

test("a collection is asked for once the measure grows by half (at least 32 MB) past its low point, not again until it grows as much more", () => {
  const w = new Watermark();
  expect(w.grown(100 * MB)).toBe(false); // first look: the low point
  expect(w.grown(140 * MB)).toBe(false);
  expect(w.grown(150 * MB)).toBe(true); // +50%
  // Asked: not again for the same heap, nor until it grows by half past 150 MB.
  expect(w.grown(150 * MB)).toBe(false);
  expect(w.grown(220 * MB)).toBe(false);
  expect(w.grown(225 * MB)).toBe(true);
  // The collection ran: the new low point counts from here.
  expect(w.grown(60 * MB)).toBe(false);
  expect(w.grown(91 * MB)).toBe(false); // +31 MB: under the 32 MB minimum
  expect(w.grown(92 * MB)).toBe(true);
});

test("a measure below zero (the filter counted in full, the heap not yet) still paces by 32 MB", () => {
  const w = new Watermark();
  expect(w.grown(-50 * MB)).toBe(false);
  expect(w.grown(-19 * MB)).toBe(false);
  expect(w.grown(-18 * MB)).toBe(true);
});

test("collections are paced only once the filter is large enough to mislead the engine's own heuristic", () => {
  expect(pacing(0)).toBe(false);
  expect(pacing(MIN_PINNED - 1)).toBe(false);
  expect(pacing(MIN_PINNED)).toBe(true);
  expect(pacing(300 * MB)).toBe(true); // the 50M-key window
});
