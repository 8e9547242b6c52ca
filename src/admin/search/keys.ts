/** The fields the index finds events by. */
export const KEY_FIELDS = ["messageId", "userId", "anonymousId", "event"] as const;
export type KeyField = (typeof KEY_FIELDS)[number];

/**
 * The index key of a field's value: a signed 64-bit hash of field and value (a
 * collision only costs reading one record more; every hit is checked against the
 * stored event before it is answered).
 */
export function keyHash(field: KeyField, value: string): bigint {
  return BigInt.asIntN(64, BigInt(Bun.hash(`${field}\u0000${value}`)));
}

/** The key identifying one stored event: its source and messageId. */
export function eventHash(sourceId: string, messageId: string): bigint {
  return BigInt.asIntN(64, BigInt(Bun.hash(`${sourceId}\u0000${messageId}`)));
}

/** What the index keeps of one stored event. */
export interface IndexRow {
  source: string;
  type: string;
  /** receivedAt, ms since the epoch. */
  received: number;
  ref: string;
  /** When its record became durable, ms since the epoch; null when not known. */
  stored: number | null;
  /** eventHash(source, messageId): finds the event itself, and checks a stale ref. */
  mh: bigint;
  keys: bigint[];
  /** Its sequence number when the log numbers its records (NATS); else the next one. */
  seq?: number;
}

/** The index row of a stored event's JSON, or undefined when it is not one. */
export function indexRow(
  ref: string,
  event: unknown,
  stored?: number,
  seq?: number,
): IndexRow | undefined {
  if (typeof event !== "object" || event === null) return undefined;
  const e = event as Record<string, unknown>;
  if (typeof e.sourceId !== "string" || typeof e.messageId !== "string") return undefined;
  const keys: bigint[] = [];
  for (const field of KEY_FIELDS) {
    const v = e[field];
    if (typeof v === "string" && v !== "") keys.push(keyHash(field, v));
  }
  const received = Date.parse(String(e.receivedAt));
  return {
    source: e.sourceId,
    type: typeof e.type === "string" ? e.type : "",
    received: Number.isNaN(received) ? 0 : received,
    ref,
    stored: stored ?? null,
    mh: eventHash(e.sourceId, e.messageId),
    keys,
    ...(seq === undefined ? {} : { seq }),
  };
}
