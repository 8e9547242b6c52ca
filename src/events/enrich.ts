import { isJsonObject } from "./json.ts";
import type { StoredEvent } from "./schema.ts";

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
    const skewed = input.receivedAt - (Date.parse(sentAt) - Date.parse(clientTime));
    out.timestamp = new Date(skewed).toISOString();
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
