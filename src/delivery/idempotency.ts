import type { StoredEvent } from "../events/schema.ts";

/**
 * The `Idempotency-Key` of a batch (SPEC 8): a SHA-256 of the connection id and the
 * messageIds of the events it carries, in order. Retries, redrives and replays of the
 * same events send the same key; any other set of events gets another key, so a
 * receiver that drops a key it has seen never drops an event it has not.
 */
export function idempotencyKey(connectionId: string, events: StoredEvent[]): string {
  const hasher = new Bun.CryptoHasher("sha256");
  // Each part length-prefixed: no two different lists of ids hash the same text.
  const part = (text: string) => hasher.update(`${text.length}:${text};`);
  part(connectionId);
  for (const e of events) {
    // A function may emit an event without a messageId: its content stands in for it.
    part(typeof e.messageId === "string" ? e.messageId : `json:${JSON.stringify(e)}`);
  }
  return `sluice-${hasher.digest("hex")}`;
}
