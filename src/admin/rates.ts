import type { IngestResult } from "../ingest/service.ts";

/** The outcomes counted per source and minute. */
export const RATE_OUTCOMES = ["accepted", "rejected", "duplicate", "rateLimited"] as const;
export type RateOutcome = (typeof RATE_OUTCOMES)[number];

const MINUTES = 60;
const MINUTE_MS = 60_000;

/** One minute of one source. */
export interface MinuteCounts {
  /** Start of the minute (ISO-8601). */
  minute: string;
  accepted: number;
  rejected: number;
  duplicate: number;
  rateLimited: number;
}

/**
 * Events per source and minute over the last hour, for the inspector's chart: a ring
 * of 60 minute slots per source, each slot reset when its minute comes round again.
 * Counting is a few array writes per request, so it runs whether or not anyone
 * watches. Memory only: a restart starts the hour afresh.
 */
export class SourceRates {
  private readonly bySource = new Map<string, { minutes: Float64Array; counts: Int32Array }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** IngestService's `onResult`. */
  readonly ingested = (sourceId: string, result: IngestResult): void => {
    this.add(sourceId, "accepted", result.accepted);
    this.add(sourceId, "duplicate", result.duplicates);
    this.add(sourceId, "rejected", result.rejected.length);
  };

  /** A request of `cost` events refused by the rate limiter. */
  rateLimited(sourceId: string, cost: number): void {
    this.add(sourceId, "rateLimited", cost);
  }

  add(sourceId: string, outcome: RateOutcome, n: number): void {
    if (n === 0) return;
    let s = this.bySource.get(sourceId);
    if (s === undefined) {
      s = { minutes: new Float64Array(MINUTES).fill(-1), counts: new Int32Array(MINUTES * 4) };
      this.bySource.set(sourceId, s);
    }
    const minute = Math.floor(this.now() / MINUTE_MS);
    const slot = minute % MINUTES;
    if (s.minutes[slot] !== minute) {
      s.minutes[slot] = minute;
      s.counts.fill(0, slot * 4, slot * 4 + 4);
    }
    s.counts[slot * 4 + RATE_OUTCOMES.indexOf(outcome)]! += n;
  }

  /** The last 60 minutes of a source, oldest first (the current minute last), zeros included. */
  lastHour(sourceId: string): MinuteCounts[] {
    const s = this.bySource.get(sourceId);
    const current = Math.floor(this.now() / MINUTE_MS);
    const out: MinuteCounts[] = [];
    for (let minute = current - MINUTES + 1; minute <= current; minute++) {
      const slot = minute % MINUTES;
      const live = s !== undefined && s.minutes[slot] === minute;
      const at = (i: number) => (live ? s.counts[slot * 4 + i]! : 0);
      out.push({
        minute: new Date(minute * MINUTE_MS).toISOString(),
        accepted: at(0),
        rejected: at(1),
        duplicate: at(2),
        rateLimited: at(3),
      });
    }
    return out;
  }
}
