import { type Static, Type as t } from "@sinclair/typebox";
import { MAX_EVENT_DEPTH, nestedDeeperThan } from "../../events/json.ts";

/** What became of one ingest attempt (one event, or a whole request refused before its events). */
export const ATTEMPT_STATUSES = [
  "accepted",
  "duplicate",
  "rejected",
  "rate_limited",
  "unauthorized",
  "failed",
] as const;
export type AttemptStatus = (typeof ATTEMPT_STATUSES)[number];

const text = (description: string) => t.Optional(t.String({ description }));

/** One ingest attempt as the live view shows it: never a write key, only its id. */
export const LiveAttempt = t.Object({
  id: t.Integer({ minimum: 1, description: "Sequence number; the SSE event id." }),
  at: t.String({ description: "When the server answered (ISO-8601)." }),
  status: t.Union(
    [
      t.Literal("accepted"),
      t.Literal("duplicate"),
      t.Literal("rejected"),
      t.Literal("rate_limited"),
      t.Literal("unauthorized"),
      t.Literal("failed"),
    ],
    {
      description:
        "accepted (stored), duplicate (already stored), rejected (invalid event or request), rate_limited, unauthorized (no or unknown write key), failed (storage error: the client retries)",
    },
  ),
  sourceId: t.Union([t.String(), t.Null()], { description: "null when no key was recognised" }),
  keyId: t.Union([t.String(), t.Null()], {
    description: "the id part of the key; never its secret",
  }),
  requestId: text("The request's id (X-Request-Id), as in the server's log lines."),
  route: text("The route pattern, e.g. /v1/batch."),
  type: text("Event type."),
  event: text("Track event name."),
  messageId: text("The event's messageId."),
  userId: text("userId"),
  anonymousId: text("anonymousId"),
  reason: text("Why it was refused."),
  field: text("The offending field, when one is to blame."),
  index: t.Optional(t.Integer({ minimum: 0, description: "Position in its batch." })),
  payload: text("Refused events only: the event as sent (writeKey removed), cut at 2 KB."),
});
export type LiveAttempt = Static<typeof LiveAttempt>;

/** An attempt before the hub numbers and stamps it. */
export type AttemptDraft = Omit<LiveAttempt, "id" | "at">;

/** Per-status counts of one second of the live stream (the page's rate). */
export const LiveRate = t.Object({
  at: t.String({ description: "End of the second counted (ISO-8601)." }),
  counts: t.Record(t.String(), t.Integer({ minimum: 0 })),
});
export type LiveRate = Static<typeof LiveRate>;

const PAYLOAD_MAX = 2048;

/** A refused event for display: top-level `writeKey` removed, JSON cut at 2 KB. */
export function payloadPreview(item: unknown): string | undefined {
  let value = item;
  if (typeof item === "object" && item !== null && !Array.isArray(item) && "writeKey" in item) {
    const { writeKey: _, ...rest } = item as Record<string, unknown>;
    value = rest;
  }
  // An item nested tens of thousands deep would hold the event loop for seconds here.
  if (nestedDeeperThan(value, MAX_EVENT_DEPTH)) return undefined;
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    return undefined;
  }
  if (json === undefined) return undefined;
  return json.length > PAYLOAD_MAX ? `${json.slice(0, PAYLOAD_MAX)}…` : json;
}

/**
 * The field a validation message blames: `track needs event: …` → event,
 * `messageId must be …` → messageId, `properties: Expected object` → properties,
 * `userId or anonymousId is required` → userId.
 */
export function blamedField(error: string): string | undefined {
  const needs = /^\w+ needs (\w+)/.exec(error);
  if (needs) return needs[1];
  const either = /^(\w+) or \w+ is required/.exec(error);
  if (either) return either[1];
  const named = /^([A-Za-z_$][\w$]*(?:[./][\w$]+)*)(?::| must )/.exec(error);
  return named ? named[1]!.replaceAll("/", ".") : undefined;
}

/** A string field of an event, for display (bounded: ids and names are short). */
export function stringField(event: unknown, name: string): string | undefined {
  if (typeof event !== "object" || event === null) return undefined;
  const v = (event as Record<string, unknown>)[name];
  if (typeof v === "string") return v.length > 256 ? v.slice(0, 256) : v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return undefined;
}
