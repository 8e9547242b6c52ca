import type { EventLog, LogPosition } from "../../log/interface.ts";
import type { StoredTimes } from "./stored-times.ts";

/** A stored record as the search index sees it: where to find it again, and its bytes. */
export interface SourcedRecord {
  /** Opaque: hands the record back through `recordAt`. */
  ref: string;
  payload: Uint8Array;
  /** When the record became durable (ms since the epoch), if known (StoredTimes). */
  storedAt?: number;
  /**
   * Its number in the log, where the log numbers its records itself (NATS: the stream
   * sequence, increasing, gaps allowed): the index then numbers the event the same, so
   * a page's cursor means the same on every instance. Absent: the index counts.
   */
  seq?: number;
}

/** A value, or a promise of it: the file log answers at once, NATS over the network. */
export type Maybe<T> = T | Promise<T>;

/**
 * What the search index needs of the event log: to follow it in order from where it
 * left off, to fetch one record again by its ref, and to hear of appends. Kept
 * this narrow so that the index follows the log's own seam, whatever its backend:
 * the file log answers synchronously (eventLogSource), NATS with promises
 * (nats-source.ts); callers await either.
 */
export interface SearchLogSource {
  /**
   * Records from `from` (a `next` this returned before; the oldest retained record when
   * undefined), in order, at most `max`; `next` continues after them. With `waitMs`, a
   * source without append signals (no `onAppend`) may wait that long for a first record.
   */
  read(
    from: string | undefined,
    max: number,
    waitMs?: number,
  ): Maybe<{ records: SourcedRecord[]; next: string }>;
  /**
   * The record `ref` names, or undefined once retention has deleted it. Throws when the
   * log cannot be asked (NATS unreachable): never undefined for "unknown".
   */
  recordAt(ref: string): Maybe<SourcedRecord | undefined>;
  /**
   * Called after each durable append; returns an unsubscribe. Absent where appends are
   * not seen here (NATS: every instance writes the stream): the indexer then follows
   * the log with reads that wait (`waitMs`).
   */
  onAppend?(listener: () => void): () => void;
  /**
   * The number (`seq`) of the newest record the log holds, where the log numbers its
   * records and can be read from any number (NATS: the stream's last sequence): a
   * search then reads only the newest part of what the index has not reached yet.
   */
  lastSeq?(): Promise<number>;
}

const REF = /^(\d{1,12}):(\d{1,15})$/;

/** `segment:offset`. */
const format = (p: LogPosition) => `${p.segment}:${p.offset}`;

function parse(ref: string): LogPosition | undefined {
  const m = REF.exec(ref);
  return m ? { segment: Number(m[1]), offset: Number(m[2]) } : undefined;
}

/**
 * The search index's view of an EventLog: a ref is the record's own position. With
 * `times`, records carry the time they became durable while it is known.
 */
export function eventLogSource(
  log: Pick<EventLog, "read" | "start" | "onAppend">,
  times?: StoredTimes,
): SearchLogSource {
  return {
    read(from, max) {
      const start = (from === undefined ? undefined : parse(from)) ?? log.start();
      const records = log.read(start, max);
      const last = records.at(-1);
      return {
        records: records.map((r) => ({
          ref: format(r.position),
          payload: r.payload,
          storedAt: times?.timeOf(r.position),
        })),
        next: format(last ? last.next : start),
      };
    },
    recordAt(ref) {
      const at = parse(ref);
      if (at === undefined) return undefined;
      const [record] = log.read(at, 1);
      if (
        !record ||
        record.position.segment !== at.segment ||
        record.position.offset !== at.offset
      ) {
        return undefined;
      }
      return { ref, payload: record.payload, storedAt: times?.timeOf(at) };
    },
    onAppend: (listener) => log.onAppend(listener),
  };
}
