import type { StoredEvent } from "../events/schema.ts";

/** What a destination says about one delivered batch. */
export type DeliveryOutcome =
  /** Confirmed; `rejected` events were refused one by one for good (dead-lettered). */
  | { ok: true; rejected?: { event: StoredEvent; reason: string }[] }
  /** A passing failure (5xx, 429, network, database down): try the same batch again. */
  | { ok: false; retry: true; reason: string; retryAfterMs?: number }
  /** The destination refused the batch for good (4xx): it goes to the dead-letter file. */
  | { ok: false; retry: false; reason: string };

/** A server-side destination: confirms a batch only once it has it. */
export interface Destination {
  readonly type: string;
  deliver(events: StoredEvent[]): Promise<DeliveryOutcome>;
  close(): Promise<void>;
}

/** Where each connection has read the log up to (at-least-once delivery). */
export interface OffsetStore {
  get(connectionId: string): import("../log/interface.ts").LogPosition | undefined;
  set(connectionId: string, position: import("../log/interface.ts").LogPosition): void;
}
