import { heapSize } from "bun:jsc";

/** Garbage the heap may gather past its live size before a collection is asked for. */
const MIN_GARBAGE = 64 * 1024 * 1024;

/**
 * Keeps garbage collection as frequent with a full filter as with an empty one.
 *
 * JavaScriptCore starts a collection once the heap has grown by about its own size after
 * the last one, and it counts every ArrayBuffer in that size, the filter's
 * SharedArrayBuffers too (in each thread that holds them). With 300 MB of filter at 50M
 * keys, each thread then let ~300 MB of garbage pile up between collections: request
 * bodies on the event loop, run and snapshot buffers in the writer. That was most of the
 * 1.7–1.9 GB peak RSS of the capacity bench, and fresh pages cost CPU to fault in.
 *
 * `check` (from a timer, not per key) asks for a collection when the heap without the
 * filter has doubled since the last one, and by at least MIN_GARBAGE: what the heuristic
 * would do if the filter were not there. `Bun.gc(false)` only schedules it.
 */
export class GcPacer {
  /** Heap bytes outside the filter after the last collection seen. */
  private floor = Number.POSITIVE_INFINITY;

  /** `pinned`: bytes of long-lived buffers (the filter) that are not garbage. */
  check(pinned: number): void {
    const other = heapSize() - pinned;
    if (other < this.floor) {
      this.floor = other; // a collection ran (or the first look)
      return;
    }
    if (other < Math.max(2 * this.floor, this.floor + MIN_GARBAGE)) return;
    Bun.gc(false);
    // Not asked again until the heap has doubled once more past this point, or a
    // collection (this one, when it has run) brings it below.
    this.floor = other;
  }
}
