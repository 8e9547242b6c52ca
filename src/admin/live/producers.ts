import type { KeyRing, ResolvedKey } from "../../auth/resolve.ts";
import { keyFromHeaders } from "../../auth/resolve.ts";
import type { SourceConfig } from "../../config/schema.ts";
import type { IngestOutcome, IngestWatcher } from "../../ingest/service.ts";
import {
  type AttemptDraft,
  type AttemptStatus,
  blamedField,
  payloadPreview,
  stringField,
} from "./attempt.ts";
import type { LiveHub } from "./hub.ts";

/** A request answered with an error, as the request observer reports it. */
export interface FailedRequest {
  request: Request;
  /** The matched route pattern, or "unmatched". */
  route: string;
  status: number;
  /** The `error` of the answer's body. */
  error: string;
  requestId?: string;
}

/** POST routes that are not ingest: their failures are not ingest attempts. */
const NOT_INGEST = /^\/(admin|inspector|api\/funcs)\/|^\/v1\/m$|^unmatched$/;
const KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/;
/** Request ids whose refusal is already published (by ingest or the rate limiter). */
const REPORTED_MAX = 4096;

/**
 * Turns what ingest, the rate limiter and the request observer see into live
 * attempts on the hub: one per event of an ingested request, one per request refused
 * before its events were read (unauthorized, rate limited, malformed, too large).
 */
export class LiveAttempts implements IngestWatcher {
  private readonly reported = new Set<string>();

  constructor(
    private readonly hub: LiveHub,
    /** The running key ring and sources (both replaced on a config reload). */
    private readonly current: () => { keys: KeyRing; config: { sources: SourceConfig[] } },
  ) {}

  get watching(): boolean {
    return this.hub.watching;
  }

  /** IngestService's watcher: each stored, duplicate and rejected event. */
  observe({ input, stored, duplicates, rejected }: IngestOutcome): void {
    const base = {
      sourceId: input.key.source.id,
      keyId: input.key.keyId,
      requestId: input.requestId,
    };
    const described = (status: AttemptStatus, e: Record<string, unknown>): AttemptDraft => ({
      ...base,
      status,
      type: stringField(e, "type"),
      event: stringField(e, "event"),
      messageId: stringField(e, "messageId"),
      userId: stringField(e, "userId"),
      anonymousId: stringField(e, "anonymousId"),
    });
    for (const e of stored) this.hub.publish(described("accepted", e));
    for (const e of duplicates) this.hub.publish(described("duplicate", e));
    for (const r of rejected) {
      const item = input.items[r.index];
      this.hub.publish({
        ...base,
        status: "rejected",
        type: input.type ?? stringField(item, "type"),
        event: stringField(item, "event"),
        messageId: r.messageId,
        userId: stringField(item, "userId"),
        anonymousId: stringField(item, "anonymousId"),
        reason: r.error,
        field: (r as { field?: string }).field ?? blamedField(r.error),
        index: input.items.length > 1 ? r.index : undefined,
        payload: payloadPreview(item),
      });
    }
    if (rejected.length > 0 && input.requestId !== undefined) this.markReported(input.requestId);
  }

  /** A request refused by the rate limiter (`HttpDeps.onRateLimited`). */
  rateLimited(key: ResolvedKey, cost: number, requestId?: string): void {
    this.hub.publish({
      status: "rate_limited",
      sourceId: key.source.id,
      keyId: key.keyId,
      requestId,
      reason: `rate limit exceeded (${cost} event${cost === 1 ? "" : "s"})`,
    });
    if (requestId !== undefined) this.markReported(requestId);
  }

  /** A failed request (the request observer): published unless its events already were. */
  requestFailed(f: FailedRequest): void {
    if (f.request.method !== "POST" || NOT_INGEST.test(f.route)) return;
    if (f.requestId !== undefined && this.reported.delete(f.requestId)) return;
    const status: AttemptStatus =
      f.status === 401
        ? "unauthorized"
        : f.status === 429
          ? "rate_limited"
          : f.status >= 500
            ? "failed"
            : "rejected";
    this.hub.publish({
      ...this.keyOf(f.request),
      status,
      requestId: f.requestId,
      route: f.route,
      reason: f.error,
    });
  }

  /** The source and key id a request presented: the id part only, never a secret. */
  private keyOf(request: Request): { sourceId: string | null; keyId: string | null } {
    const given = keyFromHeaders(request.headers, request.url);
    if (given === undefined) return { sourceId: null, keyId: null };
    const { keys, config } = this.current();
    const known = keys.resolve(given);
    if (known) return { sourceId: known.source.id, keyId: known.keyId };
    const colon = given.indexOf(":");
    const id = colon > 0 ? given.slice(0, colon) : "";
    // A key without a colon is all secret: nothing of it may be shown.
    if (!KEY_ID.test(id)) return { sourceId: null, keyId: null };
    const owner = config.sources.find((s) => s.writeKeys.some((k) => k.id === id));
    return { sourceId: owner?.id ?? null, keyId: id };
  }

  private markReported(requestId: string): void {
    if (this.reported.size >= REPORTED_MAX) this.reported.clear();
    this.reported.add(requestId);
  }
}
