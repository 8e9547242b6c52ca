import type { StoredEvent } from "../../events/schema.ts";
import type { DeliveryFailure } from "../interface.ts";

/** The stored event a delivered (or dead-lettered) event came from. */
export interface EventOrigin {
  sourceId: string;
  messageId: string;
  /** Its receivedAt (ms since the epoch): the delivery trace is keyed on it. */
  receivedAt: number;
}

/** Where a stored event came from (itself). */
export function originOf(event: {
  sourceId: string;
  messageId: string;
  receivedAt?: unknown;
}): EventOrigin {
  const receivedAt =
    typeof event.receivedAt === "string" ? Date.parse(event.receivedAt) : Number.NaN;
  return {
    sourceId: event.sourceId,
    messageId: event.messageId,
    receivedAt: Number.isNaN(receivedAt) ? 0 : receivedAt,
  };
}

/**
 * A batch a connection could not deliver, with everything needed to send it again
 * (SPEC 8). `stage` says what refused it: the destination (`events` are what the
 * connection's functions made, sent again as they are) or the functions (`events` are
 * the stored events, run through the functions again on redrive).
 */
export interface DeadLetter {
  /** Unique and time-ordered (a UUIDv7). */
  id: string;
  connectionId: string;
  /** When it was dead-lettered (ms since the epoch). */
  createdAt: number;
  /** When it was last tried (a redrive that failed moves it). */
  lastAttemptAt: number;
  stage: "destination" | "functions";
  events: StoredEvent[];
  /** The stored events behind `events`, for the inspector's per-event path. */
  origins: EventOrigin[];
  /** The last failure. */
  failure: DeliveryFailure;
  /** Attempts made, redrives included. */
  attempts: number;
}

export type NewDeadLetter = Omit<DeadLetter, "id" | "createdAt" | "lastAttemptAt"> & {
  /** Defaults to now. */
  at?: number;
};

/** How much a connection holds in its dead letters. */
export interface DeadLetterCount {
  letters: number;
  events: number;
}

/**
 * Dead letters per connection, kept where the server's other state is (SQLite in the
 * data dir; Redis when scaled out). Every method may be remote, so all are async.
 */
export interface DeadLetterStore {
  /** Stores a letter; resolves only once it would survive a crash or power loss. */
  add(letter: NewDeadLetter): Promise<DeadLetter>;
  /** A connection's letters, oldest first, `limit` of them after the id `after`. */
  list(connectionId: string, opts?: { limit?: number; after?: string }): Promise<DeadLetter[]>;
  get(connectionId: string, id: string): Promise<DeadLetter | undefined>;
  /** Letters and events held, by connection id (connections with none are absent). */
  counts(): Promise<Map<string, DeadLetterCount>>;
  /** A redrive failed again: the letter keeps its events, with this failure, one more attempt. */
  failedAgain(
    connectionId: string,
    id: string,
    failure: DeliveryFailure,
    at?: number,
  ): Promise<void>;
  /** Removes a letter that was delivered; false if it was no longer there. */
  remove(connectionId: string, id: string): Promise<boolean>;
  close(): void;
}
