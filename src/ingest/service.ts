import type { Logger } from "pino";
import type { ResolvedKey } from "../auth/resolve.ts";
import type { DedupKey, DedupStore } from "../dedup/interface.ts";
import { StorageError } from "../errors.ts";
import { type EnrichInput, type Enrichment, enrichEvent, enrichmentFor } from "../events/enrich.ts";
import {
  isJsonObject,
  MAX_EVENT_DEPTH,
  nestedDeeperThan,
  TOO_DEEP,
  UNSERIALISABLE,
} from "../events/json.ts";
import type { EventType, StoredEvent } from "../events/schema.ts";
import { validateEvent } from "../events/validate.ts";
import type { AppendRecord, LogAppender } from "../log/stream.ts";

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
  /** The request's id, for whoever watches (the inspector ties attempts to log lines by it). */
  requestId?: string;
}

export interface IngestResult {
  received: number;
  accepted: number;
  duplicates: number;
  rejected: Rejection[];
}

/** One request's events as the inspector's live view sees them. */
export interface IngestOutcome {
  input: IngestInput;
  /** Enriched events just stored. */
  stored: Record<string, unknown>[];
  /** Enriched events that were already stored (or twice in this request). */
  duplicates: Record<string, unknown>[];
  rejected: Rejection[];
}

/**
 * Someone watching ingest (the inspector's live view, SPEC 11). Rejections are
 * always told; stored and duplicate events only while `watching`, so with nobody
 * watching ingest builds nothing for it.
 */
export interface IngestWatcher {
  readonly watching: boolean;
  observe(outcome: IngestOutcome): void;
}

export interface IngestDeps {
  /** Where accepted events are stored (`log/stream.ts`: the file log or JetStream). */
  log: LogAppender;
  dedup: DedupStore;
  logger: Logger;
  maxEventBytes: number;
  onResult?: (sourceId: string, result: IngestResult) => void;
  watcher?: IngestWatcher;
}

/**
 * Validates, enriches, deduplicates and durably stores a request's events. Resolves
 * only once every accepted event is flushed to the log; throws StorageError if the
 * log or state failed, in which case nothing of the request is acknowledged.
 */
export class IngestService {
  /**
   * Per source, the messageIds whose events are being written right now, and the
   * write's outcome. A map per source rather than one keyed by `source + id`: building
   * that string three times per event was 9% of a batch's CPU.
   */
  private readonly inFlight = new Map<string, Map<string, Claim>>();

  constructor(private readonly deps: IngestDeps) {}

  /**
   * One item, validated, enriched and serialised once (the record the log stores, and
   * the measure of its size), or why it is rejected. `known`: its size as sent, when
   * the caller has it (a single event's body).
   */
  private prepare(
    item: unknown,
    known: number | undefined,
    type: EventType | undefined,
    enrich: Enrichment,
  ): { event: StoredEvent; json: string } | string {
    const max = this.deps.maxEventBytes;
    if (known !== undefined && known > max) return `event exceeds ${max} bytes`;
    const slack = known === undefined && isJsonObject(item) ? droppedBytesBound(item) : 0;
    const v = validateEvent(item, type);
    if (!v.ok) return v.error;
    if (nestedDeeperThan(v.event, MAX_EVENT_DEPTH)) return TOO_DEEP;
    const event = enrichEvent(v.event, enrich);
    const json = serialise(event);
    if (json === undefined) return UNSERIALISABLE;
    // Its UTF-8 size is at most 3 bytes per UTF-16 unit: counted only near the limit.
    if (
      known === undefined &&
      json.length * 3 + slack > max &&
      Buffer.byteLength(json) + slack > max
    ) {
      // Near the limit (or a large batch context): measure the event as sent.
      const sent = jsonBytes(item);
      if (sent === undefined) return UNSERIALISABLE;
      if (sent > max) return `event exceeds ${max} bytes`;
    }
    return { event, json };
  }

  async ingest(input: IngestInput): Promise<IngestResult> {
    const sourceId = input.key.source.id;
    const rejected: Rejection[] = [];
    const events: StoredEvent[] = [];
    const jsons: string[] = [];
    const enrich = enrichmentFor({
      receivedAt: input.receivedAt,
      sourceId,
      keyId: input.key.keyId,
      keyType: input.key.type,
      requestIp: input.requestIp,
      userAgent: input.userAgent,
      batch: input.batch,
    });
    for (let index = 0; index < input.items.length; index++) {
      const item = input.items[index];
      const prepared = this.prepare(item, input.itemBytes?.[index], input.type, enrich);
      if (typeof prepared === "string") {
        rejected.push({ index, messageId: messageIdOf(item), error: prepared });
      } else {
        events.push(prepared.event);
        jsons.push(prepared.json);
      }
    }

    // Claim each messageId before anything async: a concurrent request with the same
    // id then waits for this one's outcome instead of racing it to the store.
    const claimed: number[] = [];
    const claimedIds: string[] = [];
    const waitFor: Claim[] = [];
    const claim = new Claim();
    let claims = this.inFlight.get(sourceId);
    if (claims === undefined) {
      claims = new Map();
      this.inFlight.set(sourceId, claims);
    }
    let duplicates = 0;
    for (let i = 0; i < events.length; i++) {
      const id = events[i]!.messageId;
      const pending = claims.get(id);
      if (pending === claim)
        duplicates++; // twice in this request
      else if (pending) {
        duplicates++;
        if (waitFor[waitFor.length - 1] !== pending) waitFor.push(pending);
      } else {
        claims.set(id, claim);
        claimed.push(i);
        claimedIds.push(id);
      }
    }
    // Taken now, while the claims are unsettled (they are settled and dropped together).
    const outcomes = waitFor.length > 0 ? waitFor.map((c) => c.outcome()) : undefined;

    let fresh: number[] = [];
    try {
      const stored = await this.deps.dedup.seen(sourceId, claimedIds);
      fresh =
        stored.size === 0 ? claimed : claimed.filter((i) => !stored.has(events[i]!.messageId));
      duplicates += claimed.length - fresh.length;
      if (fresh.length > 0) {
        const records: (AppendRecord & DedupKey)[] = new Array(fresh.length);
        for (let k = 0; k < fresh.length; k++) {
          const e = events[fresh[k]!]!;
          records[k] = {
            sourceId,
            type: e.type,
            // The JSON text goes into the log's frame as is: encoded once, copied never.
            payload: jsons[fresh[k]!]!,
            messageId: e.messageId,
            receivedAt: input.receivedAt,
          };
        }
        const last = await this.deps.log.appendLast(records);
        // The records are the keys too (sourceId, messageId): no object of its own per key.
        const shared = this.deps.dedup.remember(records, last);
        // A shared store: the keys reach the other instances before the client's answer.
        if (shared !== undefined) await shared;
      }
      claim.resolve();
    } catch (err) {
      claim.reject(err);
      throw new StorageError(err);
    } finally {
      for (const id of claimedIds) claims.delete(id);
    }
    // A duplicate of an event another request is writing is acknowledged only once
    // that write is durable; if it failed, this request fails too and is retried.
    if (outcomes !== undefined) {
      try {
        await Promise.all(outcomes);
      } catch (err) {
        throw new StorageError(err);
      }
    }
    const result = { received: input.items.length, accepted: fresh.length, duplicates, rejected };
    this.deps.onResult?.(sourceId, result);
    const watcher = this.deps.watcher;
    if (watcher !== undefined && (watcher.watching || rejected.length > 0)) {
      watcher.observe(watched(input, events, fresh, rejected, watcher.watching));
    }
    return result;
  }
}

/**
 * A request's claim on the messageIds it is writing. Its promise (the write's outcome)
 * is made only when another request waits for it: most claims are never waited for,
 * and a promise, its resolvers and a catch handler per request were work for nothing.
 */
class Claim {
  private settle: PromiseWithResolvers<void> | undefined;

  /** Settles once the claiming request's write did (rejects if it failed). */
  outcome(): Promise<void> {
    if (this.settle === undefined) {
      this.settle = Promise.withResolvers<void>();
      // Waiters handle it; an unawaited rejection is no crash.
      this.settle.promise.catch(() => {});
    }
    return this.settle.promise;
  }

  resolve(): void {
    this.settle?.resolve();
  }

  reject(err: unknown): void {
    this.settle?.reject(err);
  }
}

/** What a watcher is told: rejections always, stored and duplicate events only when `all`. */
function watched(
  input: IngestInput,
  events: StoredEvent[],
  fresh: number[],
  rejected: Rejection[],
  all: boolean,
): IngestOutcome {
  if (!all) return { input, stored: [], duplicates: [], rejected };
  const stored = new Set(fresh);
  return {
    input,
    stored: fresh.map((i) => events[i]!),
    duplicates: events.filter((_, i) => !stored.has(i)),
    rejected,
  };
}

/** The event's JSON, or undefined when it cannot be serialised (e.g. nested too deeply). */
function serialise(event: unknown): string | undefined {
  try {
    return JSON.stringify(event);
  } catch {
    return undefined;
  }
}

/** The size of a value's JSON in UTF-8 bytes, or undefined when it cannot be serialised. */
function jsonBytes(value: unknown): number | undefined {
  try {
    return Buffer.byteLength(JSON.stringify(value) ?? "");
  } catch {
    return undefined;
  }
}

/** Fields whose client-sent value the server replaces or removes (enrichEvent, validateEvent). */
const SERVER_FIELDS = [
  "writeKey",
  "type",
  "messageId",
  "timestamp",
  "receivedAt",
  "requestIp",
  "sourceId",
  "keyId",
] as const;

/**
 * An upper bound on the bytes of an item's JSON that its stored form may lack, so
 * that `stored + bound <= max` proves the item as sent is within `max` without
 * serialising it a second time. The stored event keeps every other field as sent
 * (context and integrations only gain keys); dropped null or empty ids fit in the
 * base allowance. A string costs at most 6 bytes a character in JSON (`\u0000`).
 * Infinite (measure exactly) when a server field holds an object or array.
 */
function droppedBytesBound(item: Record<string, unknown>): number {
  let bound = 128;
  for (const field of SERVER_FIELDS) {
    const v = item[field];
    if (v === undefined) continue;
    if (typeof v === "string") bound += field.length + 6 + 6 * v.length;
    else if (typeof v === "object" && v !== null) return Number.POSITIVE_INFINITY;
    else bound += field.length + 32;
  }
  return bound;
}

function messageIdOf(item: unknown): string | undefined {
  if (typeof item !== "object" || item === null) return undefined;
  const id = (item as Record<string, unknown>).messageId;
  // An over-long id is itself the error: it is not echoed back or logged.
  return typeof id === "string" && id.length <= 100 ? id : undefined;
}
