import type { StoredEvent } from "../../events/schema.ts";
import { type KeyField, keyHash } from "./keys.ts";
import type { SearchLogSource, SourcedRecord } from "./log-source.ts";
import type { IndexShards, ShardFilter } from "./shards.ts";

/** A search of the stored log (SPEC 11); every field optional. */
export interface EventQuery {
  source?: string;
  type?: string;
  messageId?: string;
  userId?: string;
  anonymousId?: string;
  event?: string;
  /** receivedAt bounds, ms: from inclusive, to exclusive. */
  from?: number;
  to?: number;
  limit: number;
  /** Continue with events older than this sequence number (from a previous page). */
  before?: number;
}

/** A stored event found, with where it is in the log. */
export interface FoundEvent {
  event: StoredEvent;
  ref: string;
  /** Its order in the log (the index's sequence number). */
  seq: number;
  /** When its record became durable (ms since the epoch); null when not known. */
  storedAt: number | null;
}

export interface SearchPage {
  events: FoundEvent[];
  /** Where the next page starts (older events); null when there are no more. */
  before: number | null;
}

export interface SearchOptions {
  /** Index rows a search walks per chunk, and in all (past it, a partial page and a cursor). */
  chunk?: number;
  maxScan?: number;
  /** Records past the index (not yet indexed) a search reads at most. */
  maxTail?: number;
}

/** The most selective of the given fields drives the index walk. */
const DRIVING: KeyField[] = ["messageId", "userId", "anonymousId", "event"];
const decoder = new TextDecoder();
/**
 * Hits of a chunk read back beyond those the page still needs: a few fail the check
 * (a hash collision, a record retention deleted) without costing another round.
 */
const MORE_READ = 8;

/**
 * Search over the stored log: the index (newest first, in bounded chunks, so a search
 * costs about the same however large the log) plus the records not yet indexed, read
 * from the log itself, so an event is found as soon as it is acknowledged. Every hit
 * is read back from the log and checked against the query (hash collisions and
 * records retention has deleted never reach the answer).
 */
export class EventSearch {
  private readonly chunk: number;
  private readonly maxScan: number;
  private readonly maxTail: number;

  constructor(
    private readonly shards: IndexShards,
    private readonly log: SearchLogSource,
    opts: SearchOptions = {},
  ) {
    this.chunk = opts.chunk ?? 2000;
    this.maxScan = opts.maxScan ?? 20_000;
    this.maxTail = opts.maxTail ?? 20_000;
  }

  async search(q: EventQuery): Promise<SearchPage> {
    const below = q.before ?? Number.POSITIVE_INFINITY;
    const found: FoundEvent[] = [];
    this.shards.refresh();
    const progress = this.shards.progress();
    // Newest first: the records past the index come before anything indexed.
    const tail = await this.tail(progress, below);
    for (const f of tail.found.reverse()) {
      if (matches(f.event, q)) found.push(f);
      if (found.length > q.limit) break;
    }
    if (tail.skippedBelow !== undefined && found.length <= q.limit) {
      // Older records past the index were not read (too many): the next page goes on
      // below the oldest one read, so the page never claims to be complete.
      return { events: found, before: tail.skippedBelow };
    }
    let at = Math.min(below, progress.seq + 1);
    const filter = toFilter(q);
    let scanned = 0;
    while (found.length <= q.limit && at > 0 && scanned < this.maxScan) {
      const { hits, stoppedAt } = this.shards.hits(filter, at, this.chunk);
      scanned += this.chunk;
      // A chunk's hits are read back together (over the network, concurrently), but
      // no more of them than the page still needs.
      const wanted = hits.slice(0, q.limit + 1 - found.length + MORE_READ);
      let records = wanted.map((h) => this.log.recordAt(h.ref));
      if (records.some((r) => r instanceof Promise)) records = await Promise.all(records);
      for (let i = 0; i < wanted.length; i++) {
        const h = wanted[i]!;
        const record = records[i] as SourcedRecord | undefined;
        if (!record) continue;
        const event = parse(record.payload);
        if (event && matches(event, q)) {
          found.push({
            event,
            ref: h.ref,
            seq: h.seq,
            storedAt: h.stored ?? record.storedAt ?? null,
          });
        }
        if (found.length > q.limit) break;
      }
      // Hits left unread (the page filled before them): the next page starts at them.
      if (wanted.length < hits.length && found.length <= q.limit) {
        at = wanted.at(-1)!.seq;
        continue;
      }
      at = stoppedAt;
    }
    if (found.length > q.limit) {
      const page = found.slice(0, q.limit);
      return { events: page, before: page.at(-1)!.seq };
    }
    return { events: found, before: at > 0 ? at : null };
  }

  /** The newest stored event with this source and messageId, if the log holds it. */
  async find(sourceId: string, messageId: string): Promise<FoundEvent | undefined> {
    return (await this.search({ source: sourceId, messageId, limit: 1 })).events[0];
  }

  /**
   * Records the index has not reached yet with sequence numbers below `below`, oldest
   * first, with the numbers they will get: the newest `maxTail` of them (an event is
   * found as soon as it is acknowledged, however far behind the index is). A log that
   * numbers its records (NATS) is read from `maxTail` below its end; the file log is read
   * from the index on, keeping only the newest records (unparsed until then; the event
   * loop is let go between batches). Older
   * records left unread: `skippedBelow` is where the next page goes on.
   */
  private async tail(
    progress: { next: string | undefined; seq: number },
    below: number,
  ): Promise<{ found: FoundEvent[]; skippedBelow?: number }> {
    // Every record past the index numbers above it.
    if (this.maxTail <= 0 || below <= progress.seq + 1) return { found: [] };
    let from = progress.next;
    let seq = progress.seq;
    let skippedBelow: number | undefined;
    if (this.log.lastSeq) {
      const top = Math.min(below - 1, await this.log.lastSeq());
      if (top <= progress.seq) return { found: [] };
      const start = Math.max(progress.seq, top - this.maxTail);
      if (start > progress.seq) {
        from = String(start);
        seq = start;
        skippedBelow = start + 1;
      }
    }
    const kept: { r: SourcedRecord; seq: number }[] = [];
    for (;;) {
      const read = await this.log.read(from, 2000);
      if (read.records.length === 0) break;
      let done = false;
      for (const r of read.records) {
        seq = r.seq ?? seq + 1;
        if (seq >= below) {
          done = true;
          break;
        }
        kept.push({ r, seq });
      }
      if (kept.length > this.maxTail) {
        kept.splice(0, kept.length - this.maxTail);
        skippedBelow = kept[0]!.seq;
      }
      // The file log is read on this event loop: requests go on between batches.
      await new Promise((resolve) => setImmediate(resolve));
      if (done) break;
      from = read.next;
    }
    const found: FoundEvent[] = [];
    for (let i = 0; i < kept.length; i++) {
      const { r, seq } = kept[i]!;
      const event = parse(r.payload);
      if (event) found.push({ event, ref: r.ref, seq, storedAt: r.storedAt ?? null });
      if (i % 2000 === 1999) await new Promise((resolve) => setImmediate(resolve));
    }
    return { found, skippedBelow };
  }
}

function toFilter(q: EventQuery): ShardFilter {
  const given = DRIVING.filter((f) => q[f] !== undefined).map((f) => keyHash(f, q[f]!));
  return {
    key: given[0],
    alsoKeys: given.slice(1),
    source: q.source,
    type: q.type,
    from: q.from,
    to: q.to,
  };
}

function matches(e: StoredEvent, q: EventQuery): boolean {
  if (q.source !== undefined && e.sourceId !== q.source) return false;
  if (q.type !== undefined && e.type !== q.type) return false;
  for (const f of DRIVING) {
    if (q[f] !== undefined && e[f] !== q[f]) return false;
  }
  if (q.from !== undefined || q.to !== undefined) {
    const at = Date.parse(e.receivedAt);
    if (q.from !== undefined && !(at >= q.from)) return false;
    if (q.to !== undefined && !(at < q.to)) return false;
  }
  return true;
}

function parse(payload: Uint8Array): StoredEvent | undefined {
  try {
    const e = JSON.parse(decoder.decode(payload));
    return typeof e === "object" && e !== null ? (e as StoredEvent) : undefined;
  } catch {
    return undefined;
  }
}
