import { fullGC, heapSize } from "bun:jsc";

/**
 * Below this much filter, JavaScriptCore's own heuristic is left alone: the filter is
 * then a small part of what it counts, and full collections asked for on top of it
 * cost more than they save (batches on an empty window: 31–37 against 26–30 µs of CPU
 * per event, p99 of 100-event batches 138–169 against 85–88 ms; bench/RESULTS.md,
 * "Third session on a quiet machine"). 64 MiB is about 10M keys.
 */
export const MIN_PINNED = 64 * 1024 * 1024;

/** Whether a filter of `pinned` bytes is large enough to pace collections for. */
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
 * bytes, asks for a collection when the JS heap without
 * the filter, or (on the main thread) the process's resident memory without it, has
 * grown by half, and at least MIN_GROWTH, since its last low point: about what the
 * heuristic would do if the filter were not there. The collection is a full one, run at
 * once (`fullGC()`): keys held until their run is written outlive a young-generation
 * collection, and `Bun.gc(false)` only asks for one, which on a busy event loop did not
 * come (the store alone on a 50M-key window, 20k keys/s: 790k objects and the heap 90 MB
 * past the filter after 35 s; with full collections 143k objects, RSS 435 vs 550 MB).
 *
 * Not `Bun.gc(true)`, which after the same collection also hands the allocator's free
 * pages back to the system: under load they are needed again within a second, and
 * every page taken back costs a page fault (this VM: ~0.4 against ~0.3 faults and ~0.7
 * µs more kernel time per event with pacing at full load; bench/RESULTS.md, "Fifth
 * session: dedup cost as the window grows"). The allocators' own scavengers still
 * return pages that stay free.
 */
export class GcPacer {
  private readonly heap = new Watermark();
  private readonly rss = new Watermark();

  /**
   * `pinned`: bytes of long-lived buffers (the filter) that are not garbage; `rss`: also
   * watch the process's resident memory (one thread is enough).
   */
  check(pinned: number, rss: boolean): void {
    if (!pacing(pinned)) return;
    const heap = this.heap.grown(heapSize() - pinned);
    const resident = rss && this.rss.grown(process.memoryUsage.rss() - pinned);
    if (heap || resident) fullGC();
  }
}

/** The low point a measure grew from, and whether it grew enough to collect (exported for tests). */
export class Watermark {
  /** The lowest value since the last collection asked for. */
  private floor = Number.POSITIVE_INFINITY;

  /** Whether `value` has grown enough past the floor (which then moves up to it). */
  grown(value: number): boolean {
    if (value < this.floor) {
      this.floor = value; // a collection ran (or the first look)
      return false;
    }
    if (value < this.floor + Math.max(GROWTH * this.floor, MIN_GROWTH)) return false;
    // Not asked again until it has grown as much once more past this point, or a
    // collection (this one, when it has run) brings it below.
    this.floor = value;
    return true;
  }
}
