import { isJsonObject } from "./json.ts";
import type { StoredEvent } from "./schema.ts";
import { inStorableRange, parseIsoTime } from "./time.ts";

/** Request facts the server adds to each event (SPEC 4). */
export interface EnrichInput {
  receivedAt: number;
  sourceId: string;
  keyId: string;
  keyType: "browser" | "server";
  requestIp?: string;
  userAgent?: string;
  /** A batch's `sentAt`, `context` and `integrations`, merged under each event's own. */
  batch?: {
    sentAt?: string;
    context?: Record<string, unknown>;
    integrations?: Record<string, unknown>;
  };
}

type Json = Record<string, unknown>;

/**
 * Adds messageId, receivedAt, the clock-skew corrected timestamp, context.ip and
 * userAgent (browser keys), requestIp, sourceId and keyId; removes writeKey. Object
 * spread (not assignment) keeps `__proto__` keys plain data.
 */
export function enrichEvent(event: Json, input: EnrichInput): StoredEvent {
  const { writeKey: _dropped, ...rest } = event;
  const out: Json = rest;
  const receivedAt = new Date(input.receivedAt).toISOString();
  if (typeof out.messageId !== "string" || out.messageId === "") out.messageId = Bun.randomUUIDv7();

  const sentAt = str(out.sentAt) ?? input.batch?.sentAt;
  const clientTime = str(out.originalTimestamp) ?? str(out.timestamp);
  if (clientTime !== undefined && sentAt !== undefined) {
    // Segment's skew correction: the client's clock is off by (sentAt - receivedAt).
    out.originalTimestamp = clientTime;
    out.sentAt = sentAt;
    out.timestamp = correctedTime(input.receivedAt, sentAt, clientTime) ?? receivedAt;
  } else if (clientTime !== undefined) {
    out.timestamp = clientTime;
  } else {
    out.timestamp = receivedAt;
    if (sentAt !== undefined) out.sentAt = sentAt;
  }
  out.receivedAt = receivedAt;

  const context = merge(input.batch?.context, obj(out.context));
  if (input.keyType === "browser") {
    const filled: Json = { ...(context ?? {}) };
    if (filled.ip === undefined && input.requestIp) filled.ip = input.requestIp;
    if (filled.userAgent === undefined && input.userAgent) filled.userAgent = input.userAgent;
    out.context = filled;
  } else if (context !== undefined) {
    out.context = context;
  }
  const integrations = merge(input.batch?.integrations, obj(out.integrations));
  if (integrations !== undefined) out.integrations = integrations;

  if (input.requestIp) out.requestIp = input.requestIp;
  out.sourceId = input.sourceId;
  out.keyId = input.keyId;
  return out as StoredEvent;
}

/**
 * `receivedAt - (sentAt - clientTime)` as an ISO timestamp, or undefined when either
 * time does not parse or the result leaves the years 1970–9999 (a year-0 clock with a
 * current sentAt would give `+012026-…`, which downstream databases refuse): the
 * caller then stores receivedAt.
 */
function correctedTime(receivedAt: number, sentAt: string, clientTime: string) {
  const sent = parseIsoTime(sentAt);
  const client = parseIsoTime(clientTime);
  if (sent === undefined || client === undefined) return undefined;
  const corrected = receivedAt - (sent - client);
  return inStorableRange(corrected) ? new Date(corrected).toISOString() : undefined;
}

function merge(under: Json | undefined, over: Json | undefined): Json | undefined {
  if (under === undefined) return over;
  return { ...under, ...(over ?? {}) };
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function obj(v: unknown): Json | undefined {
  return isJsonObject(v) ? v : undefined;
}
