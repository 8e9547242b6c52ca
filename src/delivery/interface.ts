import type { StoredEvent } from "../events/schema.ts";
import type { LogPosition } from "../log/interface.ts";

/** Why a delivery failed, as the log, the dead letters and the inspector show it. */
export interface DeliveryFailure {
  /** An HTTP status, a SQLSTATE or an errno code, when there is one. */
  status?: number | string;
  /** One line: "HTTP 400", "postgres 42P01: relation "x" does not exist". */
  message: string;
  /** The destination's answer (a response body), trimmed; never a secret of ours. */
  answer?: string;
}

/** What a destination says about one batch (SPEC 8: errors are classified). */
export type DeliveryOutcome =
  /** Confirmed; `rejected` events were refused one by one for good (dead-lettered). */
  | {
      ok: true;
      status?: number | string;
      rejected?: { event: StoredEvent; failure: DeliveryFailure }[];
    }
  /** Passing (network, 5xx, 408, 429, database down): the same batch is tried again. */
  | { ok: false; transient: true; failure: DeliveryFailure; retryAfterMs?: number }
  /** Refused for good (other 4xx, missing table, permission): dead-lettered at once. */
  | { ok: false; transient: false; failure: DeliveryFailure };

/** One attempt to deliver a batch. */
export interface DeliveryAttempt {
  connectionId: string;
  /** Unique per attempt (`X-Sluice-Delivery`). */
  id: string;
}

/** A server-side destination: confirms a batch only once it has it. */
export interface Destination {
  readonly type: string;
  deliver(events: StoredEvent[], attempt: DeliveryAttempt): Promise<DeliveryOutcome>;
  close(): Promise<void>;
}

/** Where each connection has read the log up to (at-least-once delivery). */
export interface OffsetStore {
  get(connectionId: string): LogPosition | undefined;
  /** Records the offset; the first one recorded for a connection is also its start. */
  set(connectionId: string, position: LogPosition): void;
  /**
   * Where the connection began reading (its first offset), or undefined when not known
   * (no offset yet, or recorded before starts were kept).
   */
  startOf(connectionId: string): LogPosition | undefined;
}

/** Answers and messages are cut to this many characters in logs and dead letters. */
export const ANSWER_CHARS = 500;

/** `text` cut to `max` characters, marked when cut. */
export function trimmed(text: string, max = ANSWER_CHARS): string {
  const flat = text.trim();
  return flat.length <= max ? flat : `${flat.slice(0, max)}… (${flat.length} chars)`;
}
