import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { isJsonObject } from "./json.ts";
import { EVENT_SCHEMAS, EVENT_TYPES, type EventType } from "./schema.ts";

export type Validation =
  | { ok: true; event: Record<string, unknown> }
  | { ok: false; error: string };

const compiled = Object.fromEntries(
  Object.entries(EVENT_SCHEMAS).map(([type, schema]) => [type, TypeCompiler.Compile(schema)]),
) as unknown as Record<EventType, ReturnType<typeof TypeCompiler.Compile<TSchema>>>;

const ID_FIELDS = ["userId", "anonymousId", "previousId", "groupId"] as const;

export function isEventType(value: unknown): value is EventType {
  return typeof value === "string" && (EVENT_TYPES as readonly string[]).includes(value);
}

/**
 * Checks one event against Segment's rules for its type. `type` (from the path)
 * overrides the payload's. Numeric ids become strings and `null` ids count as absent
 * (Jitsu's client sends `"userId": null`; an empty string is absent too). The event object is normalised in place.
 */
export function validateEvent(raw: unknown, type?: EventType): Validation {
  if (!isJsonObject(raw)) {
    return { ok: false, error: "event must be a JSON object" };
  }
  const event = raw as Record<string, unknown>;
  if (type) event.type = type;
  if (!isEventType(event.type)) {
    return { ok: false, error: `type must be one of ${EVENT_TYPES.join(", ")}` };
  }
  for (const field of ID_FIELDS) {
    const v = event[field];
    if (v === null || v === "") delete event[field];
    else if (typeof v === "number" && Number.isFinite(v)) event[field] = String(v);
  }
  const check = compiled[event.type];
  if (!check.Check(event)) {
    const first = check.Errors(event).First();
    const schema = first?.schema as { errorMessage?: string } | undefined;
    const where = first?.path ? first.path.slice(1) : "event";
    return { ok: false, error: schema?.errorMessage ?? `${where}: ${first?.message ?? "invalid"}` };
  }
  if (event.userId === undefined && event.anonymousId === undefined) {
    return { ok: false, error: "userId or anonymousId is required" };
  }
  return { ok: true, event };
}
