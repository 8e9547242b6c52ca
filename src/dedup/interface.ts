import type { LogPosition } from "../log/interface.ts";

/** A (sourceId, messageId) pair: the dedup key of SPEC 5. */
export interface DedupKey {
  sourceId: string;
  messageId: string;
}

/**
 * Remembers which messageIds each source has stored, for `dedup.windowSeconds`.
 * Keys are recorded only after their events are durable in the log, so a key is never
 * "seen" for an event the log does not have.
 */
export interface DedupStore {
  /** The messageIds of `sourceId` among `messageIds` that were stored inside the window. */
  seen(sourceId: string, messageIds: string[]): Promise<Set<string>>;
  /** Records keys whose events are durable up to log position `upTo` (seen at `at`, ms). */
  remember(keys: DedupKey[], upTo: LogPosition, at?: number): void;
  /** The log position up to which every key is recorded durably (replay from here on start). */
  checkpoint(): LogPosition | undefined;
  /** Persists what is pending and stops timers. */
  close(): Promise<void>;
}
