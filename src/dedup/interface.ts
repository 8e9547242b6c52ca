import type { LogCursor } from "../log/stream.ts";

/** A (sourceId, messageId) pair: the dedup key of SPEC 5. */
export interface DedupKey {
  sourceId: string;
  messageId: string;
  /** When the key's event was received (ms); default: now. Replay passes the log's time. */
  at?: number;
}

/** What a store holds, for metrics and benchmarks. */
export interface DedupStats {
  /** Keys inside the window (written or not yet written). */
  keys: number;
  /** Bytes of memory the store holds for its keys (filter and unwritten keys). */
  memoryBytes: number;
}

/**
 * Remembers which messageIds each source has stored, for `dedup.windowSeconds`.
 * Keys are recorded only after their events are durable in the log, so a key is never
 * "seen" for an event the log does not have; the store may lag the log (it replays the
 * log from `checkpoint()` on start).
 */
export interface DedupStore {
  /** The messageIds of `sourceId` among `messageIds` that were stored inside the window. */
  seen(sourceId: string, messageIds: string[]): Promise<Set<string>>;
  /**
   * Records keys whose events are durable up to the record at cursor `upTo` (the log's own, opaque). Calls come in log
   * order. `at` (ms) applies to keys that carry no time of their own.
   *
   * A store shared by several instances (Redis) returns a promise that resolves once
   * the keys are visible to the others, so a client retrying on another instance right
   * after its answer finds them; it never rejects (keys it could not write are kept and
   * retried, and `healthy()` is false meanwhile). An embedded store returns nothing.
   */
  remember(keys: DedupKey[], upTo: LogCursor, at?: number): void | Promise<void>;
  /** The cursor of the last record whose key is recorded durably (start-up replays the log after it). */
  checkpoint(): LogCursor | undefined;
  /** Resolves once the store can take more keys without holding too many in memory. */
  backlog(): Promise<void>;
  stats(): DedupStats;
  /** False while keys cannot be written (they are kept in memory and retried). */
  healthy(): boolean;
  /** Persists what is pending and stops timers. */
  close(): Promise<void>;
}
