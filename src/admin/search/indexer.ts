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
  /** A source without append signals (NATS): how long one read waits for new records. */
  waitMs?: number;
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
  /** A run (batches, or one waiting read) is under way: runs never overlap. */
  private running: Promise<void> | undefined;
  /** An append was signalled while a run was under way: another run follows it. */
  private again = false;
  private dropping = false;
  private readonly batch: number;
  private readonly delayMs: number;
  private readonly maxShare: number;
  private readonly waitMs: number;

  constructor(
    private readonly shards: IndexShards,
    private readonly log: SearchLogSource,
    private readonly opts: IndexerOptions,
  ) {
    this.batch = opts.batch ?? 500;
    this.delayMs = opts.delayMs ?? 100;
    this.maxShare = opts.maxShare ?? 0.08;
    this.waitMs = opts.waitMs ?? 5_000;
  }

  start(): void {
    // A log with append signals is read after them; one without (NATS) is followed by
    // reads that wait for the next record (each run ends by scheduling the next).
    this.unsubscribe = this.log.onAppend?.(() => this.schedule(this.delayMs));
    this.retention = setInterval(
      () =>
        void this.dropExpired().catch((err) =>
          this.opts.logger.error({ err }, "search index retention check failed; retrying later"),
        ),
      this.opts.retentionCheckMs ?? 60_000,
    );
    this.retention.unref?.();
    this.schedule(0);
  }

  /** Stops following the log; resolves once a run under way has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.retention !== undefined) clearInterval(this.retention);
    await this.running;
  }

  /** Indexes what the log holds beyond the index, now, for `maxMs` at most (tests, a stop). */
  async catchUp(maxMs = Number.POSITIVE_INFINITY): Promise<void> {
    await this.running;
    const until = performance.now() + maxMs;
    while ((await this.step(0)) === this.batch && performance.now() < until);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.run().then((next) => {
        this.running = undefined;
        const again = this.again;
        this.again = false;
        if (next !== undefined) this.schedule(next);
        else if (again) this.schedule(this.delayMs);
      });
    }, ms);
  }

  /** Batches for a slice of time; resolves with when to run next (undefined: on the next append). */
  private async run(): Promise<number | undefined> {
    const follow = this.log.onAppend === undefined;
    try {
      // A slice of at most SLICE_MS; a full last batch means more is waiting, taken up
      // after a pause long enough to keep indexing within its share of the time. A
      // source without append signals waits in its read when there is nothing new.
      const started = performance.now();
      let full = false;
      let read = 0;
      do {
        read = await this.step(follow ? this.waitMs : 0);
        full = read === this.batch;
      } while (full && !this.stopped && performance.now() - started < SLICE_MS);
      const spent = performance.now() - started;
      if (full) return Math.ceil((spent * (1 - this.maxShare)) / this.maxShare);
      // Followed: what came in meanwhile is read in one batch, not a record at a time.
      if (follow) return read > 0 ? this.delayMs : 0;
      return undefined;
    } catch (err) {
      this.opts.logger.error({ err }, "search index update failed; retrying");
      return 5000;
    }
  }

  /** Indexes one batch; returns how many records it read. */
  private async step(waitMs: number): Promise<number> {
    const { next, seq } = this.shards.progress();
    const read = await this.log.read(next, this.batch, waitMs);
    if (read.records.length === 0) return 0;
    const rows = [];
    let last = seq;
    for (const r of read.records) {
      // Numbered by the log: what the index holds already is never indexed twice.
      if (r.seq !== undefined) {
        if (r.seq <= last) continue;
        last = r.seq;
      }
      let event: unknown;
      try {
        event = JSON.parse(decoder.decode(r.payload));
      } catch {
        continue;
      }
      const row = indexRow(r.ref, event, r.storedAt, r.seq);
      if (row) rows.push(row);
    }
    this.shards.append(rows, read.next);
    return read.records.length;
  }

  /**
   * Drops shards whose events retention has deleted from the log. A log that cannot be
   * asked (NATS unreachable) throws: nothing is dropped on a guess.
   */
  async dropExpired(): Promise<void> {
    if (this.dropping) return;
    this.dropping = true;
    try {
      for (;;) {
        const last = this.shards.oldestShardLast();
        if (!last) return;
        const record = await this.log.recordAt(last.ref);
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
    } finally {
      this.dropping = false;
    }
  }
}
