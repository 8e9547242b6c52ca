import { indexRow } from "./keys.ts";
import type { SearchLogSource } from "./log-source.ts";
import type { IndexShards } from "./shards.ts";

export interface IndexerOptions {
  /** Records indexed per transaction (and per turn of the event loop). */
  batch?: number;
  /** Appends within this long are indexed together: one transaction, not one each. */
  delayMs?: number;
  /** How often old shards are checked against the log's retention. */
  retentionCheckMs?: number;
  /**
   * Most of the process's time indexing may take while it has work (0.1: a tenth). The
   * indexer shares the event loop with ingest: under a load that keeps the server busy,
   * ingest keeps the rest and the index catches up later (search reads the part not
   * yet indexed from the log).
   */
  maxShare?: number;
  logger: IndexerLogger;
}

/** What the indexer logs through (a pino Logger, or the writer thread's relay). */
export interface IndexerLogger {
  info(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

const decoder = new TextDecoder();
/** The longest stretch the indexer holds the event loop. */
const SLICE_MS = 4;

/**
 * Follows the event log and writes the search index, off the ack path: it runs only
 * after appends are durable (on the log's append signal), a batch per turn of the
 * event loop, and never holds up a request. A record that does not parse is skipped
 * (the log reports corruption itself); the index's progress commits with its rows.
 */
export class SearchIndexer {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private retention: ReturnType<typeof setInterval> | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private readonly batch: number;
  private readonly delayMs: number;
  private readonly maxShare: number;

  constructor(
    private readonly shards: IndexShards,
    private readonly log: SearchLogSource,
    private readonly opts: IndexerOptions,
  ) {
    this.batch = opts.batch ?? 500;
    this.delayMs = opts.delayMs ?? 100;
    this.maxShare = opts.maxShare ?? 0.08;
  }

  start(): void {
    this.unsubscribe = this.log.onAppend(() => this.schedule(this.delayMs));
    this.retention = setInterval(() => this.dropExpired(), this.opts.retentionCheckMs ?? 60_000);
    this.retention.unref?.();
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.retention !== undefined) clearInterval(this.retention);
  }

  /** Indexes what the log holds beyond the index, now, for `maxMs` at most (tests, a stop). */
  catchUp(maxMs = Number.POSITIVE_INFINITY): void {
    const until = performance.now() + maxMs;
    while (this.step() === this.batch && performance.now() < until);
  }

  private schedule(ms: number): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        // A slice of at most SLICE_MS; a full last batch means more is waiting, taken up
        // after a pause long enough to keep indexing within its share of the time.
        const started = performance.now();
        let full = false;
        do full = this.step() === this.batch;
        while (full && performance.now() - started < SLICE_MS);
        const spent = performance.now() - started;
        if (full) this.schedule(Math.ceil((spent * (1 - this.maxShare)) / this.maxShare));
      } catch (err) {
        this.opts.logger.error({ err }, "search index update failed; retrying");
        this.schedule(5000);
      }
    }, ms);
  }

  /** Indexes one batch; returns how many records it read. */
  private step(): number {
    const { next } = this.shards.progress();
    const read = this.log.read(next, this.batch);
    if (read.records.length === 0) return 0;
    const rows = [];
    for (const r of read.records) {
      let event: unknown;
      try {
        event = JSON.parse(decoder.decode(r.payload));
      } catch {
        continue;
      }
      const row = indexRow(r.ref, event, r.storedAt);
      if (row) rows.push(row);
    }
    this.shards.append(rows, read.next);
    return read.records.length;
  }

  /** Drops shards whose events retention has deleted from the log. */
  dropExpired(): void {
    for (;;) {
      const last = this.shards.oldestShardLast();
      if (!last) return;
      const record = this.log.recordAt(last.ref);
      if (record) {
        try {
          const e = JSON.parse(decoder.decode(record.payload));
          const row = indexRow(last.ref, e);
          if (row && row.mh === last.mh) return;
        } catch {}
      }
      this.opts.logger.info(
        { upToSeq: last.seq },
        "search index: dropped a shard the log no longer holds",
      );
      this.shards.dropOldest();
    }
  }
}
