import type { Logger } from "pino";
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
  logger: Logger;
}

const decoder = new TextDecoder();

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

  constructor(
    private readonly shards: IndexShards,
    private readonly log: SearchLogSource,
    private readonly opts: IndexerOptions,
  ) {
    this.batch = opts.batch ?? 2000;
    this.delayMs = opts.delayMs ?? 100;
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

  /** Indexes what the log holds beyond the index, now (tests, benchmarks). */
  catchUp(): void {
    while (this.step() === this.batch);
  }

  private schedule(ms: number): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        // A full batch means more is waiting: go on after other work had its turn.
        if (this.step() === this.batch) this.schedule(0);
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
      const row = indexRow(r.ref, event);
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
