import { expect, test } from "bun:test";
import { type Collector, GcPacer, MIN_PINNED, pacing, Watermark } from "../../src/dedup/gc.ts";

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

test("collections are paced by a share of the low point only once the filter is large enough to mislead the engine's own heuristic", () => {
  expect(pacing(0)).toBe(false);
  expect(pacing(MIN_PINNED - 1)).toBe(false);
  expect(pacing(MIN_PINNED)).toBe(true);
  expect(pacing(300 * MB)).toBe(true); // the 50M-key window
});

test("with a small filter a collection is asked for every 32 MB of growth, however large the low point", () => {
  const e = engine(true);
  const pacer = new GcPacer(e);
  const pinned = MIN_PINNED - 1; // e.g. an empty window: 0
  e.resident = 300 * MB; // a server's resident memory under batch load
  e.heap = 40 * MB;
  pacer.check(pinned, true); // the low points
  e.resident = 331 * MB;
  pacer.check(pinned, true);
  expect(e.asked).toEqual([]);
  e.resident = 333 * MB; // +33 MB: far less than half of 300 MB
  pacer.check(pinned, true);
  expect(e.asked).toEqual(["concurrent"]);
});

/** An engine whose heap the test sets, recording what the pacer asked of it. */
function engine(
  collects: boolean,
): Collector & { heap: number; resident: number; asked: string[] } {
  const e = {
    heap: 0,
    resident: 0,
    asked: [] as string[],
    heapSize: () => e.heap,
    rss: () => e.resident,
    // A concurrent collection that comes (one run on the spot) or never does.
    concurrent: () => {
      e.asked.push("concurrent");
      if (collects) Bun.gc(true);
    },
    full: () => {
      e.asked.push("full");
    },
  };
  return e;
}

/** Lets the current job end, so that a WeakRef's target may be collected. */
const nextJob = () => new Promise((resolve) => setTimeout(resolve, 0));

test("when the concurrent collection asked for has not run by the next pacing point, a full one runs on the spot", async () => {
  const e = engine(false);
  const pacer = new GcPacer(e);
  const pinned = MIN_PINNED;
  e.heap = pinned + 100 * MB;
  pacer.check(pinned, false); // the low point
  e.heap = pinned + 150 * MB;
  pacer.check(pinned, false);
  expect(e.asked).toEqual(["concurrent"]);
  await nextJob(); // no collection comes meanwhile
  e.heap = pinned + 225 * MB;
  pacer.check(pinned, false);
  expect(e.asked).toEqual(["concurrent", "full"]);
  // After the full one, the next point asks for a concurrent one again.
  e.heap = pinned + 340 * MB;
  pacer.check(pinned, false);
  expect(e.asked).toEqual(["concurrent", "full", "concurrent"]);
});

test("when the concurrent collection asked for has run, the next pacing point asks for another, not a full one", async () => {
  const e = engine(true);
  const pacer = new GcPacer(e);
  const pinned = MIN_PINNED;
  e.heap = pinned + 100 * MB;
  pacer.check(pinned, false);
  e.heap = pinned + 150 * MB;
  pacer.check(pinned, false);
  // The object the pacer let go is collected by a full collection in a later job.
  await nextJob();
  Bun.gc(true);
  e.heap = pinned + 225 * MB;
  pacer.check(pinned, false);
  expect(e.asked).toEqual(["concurrent", "concurrent"]);
});

test("with a small filter, a concurrent collection not run by the next pacing point is asked for again, never run on the event loop", async () => {
  const e = engine(false);
  const pacer = new GcPacer(e);
  const pinned = MIN_PINNED - 1;
  e.heap = 40 * MB;
  pacer.check(pinned, false); // the low point
  e.heap = 73 * MB;
  pacer.check(pinned, false);
  await nextJob(); // no collection comes meanwhile
  e.heap = 106 * MB;
  pacer.check(pinned, false);
  expect(e.asked).toEqual(["concurrent", "concurrent"]);
});
