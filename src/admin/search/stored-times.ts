import type { LogPosition } from "../../log/interface.ts";

/** Entries drained from one StoredTimes for another (the writer thread's copy). */
export interface StoredTimesUpdate {
  /** Where the log ended before the first entry: the receiver checks it has no gap. */
  from: LogPosition;
  /** [segment, offset, ms since the epoch] per entry, oldest first. */
  times: number[];
}

/**
 * When the log's records became durable (SPEC 11, the event path's stored time): for
 * each durable append (one group commit), where the log then ended and the time the
 * server saw it. A record's stored time is that of the first append that ends past it,
 * exactly: appends within one millisecond share an entry (same time either way), and
 * a record older than the entries kept has no known time, never a guessed one.
 *
 * A fixed ring of numbers: adding an entry allocates nothing (the ingest side adds one
 * per group commit, not per event); the oldest entries give way to new ones.
 */
export class StoredTimes {
  /** [segment, offset, time] per entry. */
  private readonly ring: Float64Array;
  /** Slot of the oldest entry. */
  private first = 0;
  private count = 0;
  /** The newest entries not drained yet (drain). */
  private unsent = 0;
  /** Records before this position are older than every entry: their time is unknown. */
  private floorSegment: number;
  private floorOffset: number;

  /** `from`: where the log ended when it started being followed. */
  constructor(
    from: LogPosition,
    private readonly capacity = 16_384,
  ) {
    this.ring = new Float64Array(capacity * 3);
    this.floorSegment = from.segment;
    this.floorOffset = from.offset;
  }

  /** An append became durable at `at`; the log now ends at `end`. */
  add(end: LogPosition, at: number): void {
    if (this.unsent > 0) {
      const last = this.slot(this.count - 1);
      if (this.ring[last + 2] === at) {
        // An entry not sent yet may still grow: sent ones never change.
        this.ring[last] = end.segment;
        this.ring[last + 1] = end.offset;
        return;
      }
    }
    this.push(end.segment, end.offset, at);
    this.unsent = Math.min(this.unsent + 1, this.count);
  }

  /** The stored time of the record at `at` (ms since the epoch), if known. */
  timeOf(at: LogPosition): number | undefined {
    if (before(at.segment, at.offset, this.floorSegment, this.floorOffset)) return undefined;
    // The first entry that ends past the record (entries are in log order).
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const s = this.slot(mid);
      if (before(at.segment, at.offset, this.ring[s]!, this.ring[s + 1]!)) hi = mid;
      else lo = mid + 1;
    }
    return lo < this.count ? this.ring[this.slot(lo) + 2] : undefined;
  }

  /** The entries added since the last drain, if any; each is drained once. */
  drain(): StoredTimesUpdate | undefined {
    if (this.unsent === 0) return undefined;
    const firstUnsent = this.count - this.unsent;
    const from =
      firstUnsent > 0
        ? this.endOf(firstUnsent - 1)
        : { segment: this.floorSegment, offset: this.floorOffset };
    const times: number[] = [];
    for (let i = firstUnsent; i < this.count; i++) {
      const s = this.slot(i);
      times.push(this.ring[s]!, this.ring[s + 1]!, this.ring[s + 2]!);
    }
    this.unsent = 0;
    return { from, times };
  }

  /**
   * Takes entries drained from another StoredTimes. After a gap (entries the sender
   * dropped before draining them) only the received ones are known.
   */
  receive(update: StoredTimesUpdate): void {
    const known =
      this.count > 0
        ? this.endOf(this.count - 1)
        : { segment: this.floorSegment, offset: this.floorOffset };
    if (known.segment !== update.from.segment || known.offset !== update.from.offset) {
      this.first = 0;
      this.count = 0;
      this.floorSegment = update.from.segment;
      this.floorOffset = update.from.offset;
    }
    const t = update.times;
    for (let i = 0; i + 2 < t.length; i += 3) this.push(t[i]!, t[i + 1]!, t[i + 2]!);
  }

  private push(segment: number, offset: number, at: number): void {
    if (this.count === this.capacity) {
      const oldest = this.slot(0);
      this.floorSegment = this.ring[oldest]!;
      this.floorOffset = this.ring[oldest + 1]!;
      this.first = (this.first + 1) % this.capacity;
      this.count--;
    }
    const s = this.slot(this.count);
    this.ring[s] = segment;
    this.ring[s + 1] = offset;
    this.ring[s + 2] = at;
    this.count++;
  }

  private endOf(i: number): LogPosition {
    const s = this.slot(i);
    return { segment: this.ring[s]!, offset: this.ring[s + 1]! };
  }

  /** Where the i-th oldest entry starts in the ring. */
  private slot(i: number): number {
    return ((this.first + i) % this.capacity) * 3;
  }
}

/** Whether position a is before position b. */
function before(aSegment: number, aOffset: number, bSegment: number, bOffset: number): boolean {
  return aSegment < bSegment || (aSegment === bSegment && aOffset < bOffset);
}
