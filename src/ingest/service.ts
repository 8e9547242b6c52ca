import type { Logger } from "pino";
import type { ResolvedKey } from "../auth/resolve.ts";
import type { DedupStore } from "../dedup/interface.ts";
import { type EnrichInput, enrichEvent } from "../events/enrich.ts";
import type { EventType } from "../events/schema.ts";
import { validateEvent } from "../events/validate.ts";
import { StorageError } from "../http/errors.ts";
import type { EventLog } from "../log/interface.ts";

/** One event of a request that was not stored, and why. */
export interface Rejection {
  index: number;
  messageId?: string;
  error: string;
}

export interface IngestInput {
  key: ResolvedKey;
  /** Raw events, as parsed from the body. */
  items: unknown[];
  /** The path's type (overrides the payload's), if any. */
  type?: EventType;
  receivedAt: number;
  requestIp?: string;
  userAgent?: string;
  batch?: EnrichInput["batch"];
  /** Per-item JSON size in bytes, when the caller already knows it. */
  itemBytes?: number[];
}

export interface IngestResult {
  received: number;
  accepted: number;
  duplicates: number;
  rejected: Rejection[];
}

export interface IngestDeps {
  log: EventLog;
  dedup: DedupStore;
  logger: Logger;
  maxEventBytes: number;
  onResult?: (sourceId: string, result: IngestResult) => void;
}

/**
 * Validates, enriches, deduplicates and durably stores a request's events. Resolves
 * only once every accepted event is flushed to the log; throws StorageError if the
 * log or state failed, in which case nothing of the request is acknowledged.
 */
export class IngestService {
  /** Dedup keys whose events are being written right now, and the write's outcome. */
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly encoder = new TextEncoder();

  constructor(private readonly deps: IngestDeps) {}

  async ingest(input: IngestInput): Promise<IngestResult> {
    const sourceId = input.key.source.id;
    const rejected: Rejection[] = [];
    const valid: { index: number; event: Record<string, unknown> }[] = [];
    input.items.forEach((item, index) => {
      const max = this.deps.maxEventBytes;
      const bytes = input.itemBytes?.[index];
      if (bytes !== undefined ? bytes > max : exceedsBytes(item, max)) {
        rejected.push({
          index,
          messageId: messageIdOf(item),
          error: `event exceeds ${this.deps.maxEventBytes} bytes`,
        });
        return;
      }
      const v = validateEvent(item, input.type);
      if (v.ok) valid.push({ index, event: v.event });
      else rejected.push({ index, messageId: messageIdOf(item), error: v.error });
    });

    const enrich: EnrichInput = {
      receivedAt: input.receivedAt,
      sourceId,
      keyId: input.key.keyId,
      keyType: input.key.type,
      requestIp: input.requestIp,
      userAgent: input.userAgent,
      batch: input.batch,
    };
    const events = valid.map((v) => enrichEvent(v.event, enrich));

    // Claim each messageId before anything async: a concurrent request with the same
    // id then waits for this one's outcome instead of racing it to the store.
    const claimed: typeof events = [];
    const waitFor: Promise<unknown>[] = [];
    const inRequest = new Set<string>();
    const claim = Promise.withResolvers<void>();
    claim.promise.catch(() => {}); // waiters handle it; an unawaited rejection is no crash
    let duplicates = 0;
    for (const e of events) {
      const k = `${sourceId}\u0000${e.messageId}`;
      const pending = this.inFlight.get(k);
      if (inRequest.has(e.messageId)) duplicates++;
      else if (pending) {
        duplicates++;
        waitFor.push(pending);
      } else {
        inRequest.add(e.messageId);
        this.inFlight.set(k, claim.promise);
        claimed.push(e);
      }
    }

    let fresh: typeof events = [];
    try {
      const stored = await this.deps.dedup.seen(
        sourceId,
        claimed.map((e) => e.messageId),
      );
      fresh = claimed.filter((e) => !stored.has(e.messageId));
      duplicates += claimed.length - fresh.length;
      if (fresh.length > 0) {
        const upTo = await this.deps.log.append(
          fresh.map((e) => this.encoder.encode(JSON.stringify(e))),
        );
        this.deps.dedup.remember(
          fresh.map((e) => ({ sourceId, messageId: e.messageId })),
          upTo,
        );
      }
      claim.resolve();
    } catch (err) {
      claim.reject(err);
      throw new StorageError(err);
    } finally {
      for (const e of claimed) this.inFlight.delete(`${sourceId}\u0000${e.messageId}`);
    }
    // A duplicate of an event another request is writing is acknowledged only once
    // that write is durable; if it failed, this request fails too and is retried.
    if (waitFor.length > 0) {
      try {
        await Promise.all(waitFor);
      } catch (err) {
        throw new StorageError(err);
      }
    }
    const result = { received: input.items.length, accepted: fresh.length, duplicates, rejected };
    this.deps.onResult?.(sourceId, result);
    return result;
  }
}

/** Whether an event's JSON is longer than `max` bytes (counted exactly only near the limit). */
function exceedsBytes(item: unknown, max: number): boolean {
  const text = JSON.stringify(item) ?? "";
  if (text.length > max) return true;
  return text.length * 3 > max && Buffer.byteLength(text) > max;
}

function messageIdOf(item: unknown): string | undefined {
  if (typeof item !== "object" || item === null) return undefined;
  const id = (item as Record<string, unknown>).messageId;
  // An over-long id is itself the error: it is not echoed back or logged.
  return typeof id === "string" && id.length <= 100 ? id : undefined;
}
