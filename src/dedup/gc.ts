import { fullGC, heapSize } from "bun:jsc";

/**
 * From this much filter on, the growth that asks for a collection is a share of the
 * low point (GROWTH, at least MIN_GROWTH); below it, MIN_GROWTH flat. 64 MiB is about
 * 10M keys.
 */
export const MIN_PINNED = 64 * 1024 * 1024;

/** Whether a filter of `pinned` bytes is large enough to pace by a share of the low point. */
export const pacing = (pinned: number): boolean => pinned >= MIN_PINNED;

/** Growth past the last low point that asks for a collection ... */
const MIN_GROWTH = 32 * 1024 * 1024;
/** ... or this share of that low point, if more. */
const GROWTH = 0.5;

/**
 * Keeps garbage collection as frequent with a full filter as with an empty one.
 *
 * JavaScriptCore starts a collection once the heap has grown by about its own size after
 * the last one, and it counts every ArrayBuffer in that size, the filter's
 * SharedArrayBuffers too (in each thread that holds them). With 300 MB of filter at 50M
 * keys, collections came so rarely under load that garbage, and the native memory only
 * a collection frees (request bodies, SQLite statements' buffers), piled up: the
 * capacity bench's server peaked at 1.6–1.9 GB, against ~320 MB on an empty window.
 *
 * `check` (from a timer, never per key), once the filter holds at least MIN_PINNED
 * bytes, asks for a full collection when the JS heap without the filter, or (on the
 * main thread) the process's resident memory without it, has grown by half, and at
 * least MIN_GROWTH, since its last low point: about what the heuristic would do if the
 * filter were not there. Full, because keys held until their run is written outlive a
 * young-generation collection.
 *
 * With a smaller filter it asks once either has grown by MIN_GROWTH: under 500-event
 * batches on an empty window the engine's own heuristic let garbage pile up to peaks of
 * 520–617 MB at 64–67k events/s, most of it outside the heap's cells (the events' texts,
 * request bodies, memory the allocator had not reused yet); asked every 32 MB, 418–436
 * MB at 65–81k events/s with CPU per event and p99 no worse (bench/RESULTS.md, "Sixth
 * session: frames"). (Before `Bun.gc(false)` ran concurrently, full collections asked
 * for on an empty window cost more than they saved: "Third session on a quiet machine".)
 *
 * `Bun.gc(false)`: on Bun 1.4.5 it starts a concurrent full collection at once and
 * returns (~1 ms on the event loop), where `Bun.gc(true)` (first used here) and
 * `fullGC()` run it on the event loop: 45–60 ms each, and under full load the pacing
 * asks ~once a second, the step in the soak's CPU per event and throughput once the
 * filter passed MIN_PINNED (bench/RESULTS.md, "Fifth session: dedup cost as the window
 * grows": with pacing from the start, 0.5–1.3 s per 10 s on the loop with
 * `Bun.gc(true)`, 0.54–0.66 s with `fullGC()`, 3–17 ms with `Bun.gc(false)`). On older
 * Bun, `Bun.gc(false)` only asked, and the collection did not come (the third session:
 * 790k objects and the heap 90 MB past the filter after 35 s); on 1.4.5 it still does
 * not when the event loop has little to do (the store alone at 20k keys/s: one object
 * per key recorded, never freed), and under full load on 2 busy cores about 2 in 5 had
 * not run by the next pacing point. So when the next pacing point comes and no full
 * collection has run since the request, a full one runs here (`fullGC()`; from
 * MIN_PINNED of filter on only: "Sixth session: review of the frames scratch and the
 * small-filter GC pacing"): with pacing
 * from the start, 1–8 of those per 10 s (70–370 ms) against 8–16 (540–660 ms) with
 * `fullGC()` every time.
 * `Bun.gc(true)` also hands the allocator's free pages back to the system, which under
 * load takes them again at once, a page fault each (~0.4 against ~0.3 faults per event).
 */
export class GcPacer {
  private readonly heap = new Watermark();
  private readonly rss = new Watermark();
  /**
   * Whether a full collection ran since the last one was asked for: an object that had
   * lived since the request before (so in the old generation, which only a full
   * collection frees) is let go when a concurrent one is asked for, and watched.
   */
  private held: object = {};
  private watched: WeakRef<object> | undefined;

  constructor(private readonly engine: Collector = ENGINE) {}

  /**
   * `pinned`: bytes of long-lived buffers (the filter) that are not garbage; `rss`: also
   * watch the process's resident memory (one thread is enough).
   */
  check(pinned: number, rss: boolean): void {
    const share = pacing(pinned) ? GROWTH : 0;
    const heap = this.heap.grown(this.engine.heapSize() - pinned, share);
    const resident = rss && this.rss.grown(this.engine.rss() - pinned, share);
    if (!heap && !resident) return;
    if (share > 0 && this.watched?.deref() !== undefined) {
      // The concurrent one asked for last time has not run (an event loop with little
      // to do): run one here. Not for a small filter, where the engine's own heuristic
      // still collects: there it would only stall the loop (16–66 ms a time, 1–2 per
      // 12 s under single events, 14–18 per 12 s under batches) for a collection that
      // was most often still running on a busy core.
      this.engine.full();
      this.watched = undefined;
      return;
    }
    this.watched = new WeakRef(this.held);
    this.held = {};
    this.engine.concurrent();
  }
}

/** What the pacer measures and asks of the engine (replaced in tests). */
export interface Collector {
  /** Bytes of the JS heap, ArrayBuffers included. */
  heapSize(): number;
  /** The process's resident memory in bytes. */
  rss(): number;
  /** Starts a full collection off the event loop, and returns. */
  concurrent(): void;
  /** Runs a full collection on the event loop, before returning. */
  full(): void;
}

const ENGINE: Collector = {
  heapSize,
  rss: () => process.memoryUsage.rss(),
  concurrent: () => Bun.gc(false),
  full: fullGC,
};

/** The low point a measure grew from, and whether it grew enough to collect (exported for tests). */
export class Watermark {
  /** The lowest value since the last collection asked for. */
  private floor = Number.POSITIVE_INFINITY;

  /**
   * Whether `value` has grown enough past the floor (which then moves up to it): by
   * `share` of the floor, and at least MIN_GROWTH.
   */
  grown(value: number, share = GROWTH): boolean {
    if (value < this.floor) {
      this.floor = value; // a collection ran (or the first look)
      return false;
    }
    if (value < this.floor + Math.max(share * this.floor, MIN_GROWTH)) return false;
    // Not asked again until it has grown as much once more past this point, or a
    // collection (this one, when it has run) brings it below.
    this.floor = value;
    return true;
  }
}
