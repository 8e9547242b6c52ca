import type { Logger } from "pino";
import type { ConnectionConfig } from "../config/schema.ts";
import type { StoredEvent } from "../events/schema.ts";
import { comparePositions, type EventLog, type LogPosition } from "../log/interface.ts";
import { backoffMs } from "./backoff.ts";
import { countDeadLetters, writeDeadLetters } from "./dead-letter.ts";
import type { Destination, OffsetStore } from "./interface.ts";

/** What a connection's function chain made of one event. */
export type ChainOutcome =
  | { events: StoredEvent[] }
  /** A function asked for the event to be tried again later (RetryError). */
  | { retry: string };

/** Runs a connection's functions over one event; identity when it has none. */
export type ChainRunner = (
  connection: ConnectionConfig,
  event: StoredEvent,
  retries: number,
) => Promise<ChainOutcome>;

export interface ConsumerOptions {
  connection: ConnectionConfig;
  log: EventLog;
  offsets: OffsetStore;
  destination: Destination;
  chain: ChainRunner;
  logger: Logger;
  dataDir: string;
  batchSize: number;
  maxWaitMs: number;
  /** Attempts before a batch goes to the dead-letter file; Infinity retries for ever. */
  maxAttempts: number;
  retryBaseMs: number;
  onDelivered?: (connectionId: string, events: number) => void;
  onDeadLetter?: (connectionId: string, events: number) => void;
}

const decoder = new TextDecoder();

/**
 * Reads one connection's source events from the log in order, runs its functions,
 * and delivers batches. The offset moves only after the destination confirmed a
 * batch (or it was dead-lettered): delivery is at-least-once.
 */
export class ConnectionConsumer {
  private position!: LogPosition;
  private stopped = false;
  private running: Promise<void> | null = null;
  /** Sleepers to wake: all on stop, those waiting for new events on an append. */
  private readonly sleepers = new Set<{ wake: () => void; onAppend: boolean }>();
  private unsubscribe: (() => void) | null = null;
  /** Events in this connection's dead-letter file (read once at start, then counted). */
  deadLetters = 0;

  constructor(private readonly opts: ConsumerOptions) {}

  get id(): string {
    return this.opts.connection.id;
  }

  get connection(): ConnectionConfig {
    return this.opts.connection;
  }

  /** Where the connection has confirmed delivery up to. */
  offset(): LogPosition {
    return this.position;
  }

  start(): void {
    const { connection, log, offsets } = this.opts;
    const saved = offsets.get(connection.id);
    if (saved && comparePositions(saved, log.end()) > 0) {
      // The log was cut back below this offset (a corrupt tail truncated at start):
      // go on from its end, or events appended there now would be skipped.
      this.opts.logger.warn(
        { connectionId: connection.id, offset: saved, logEnd: log.end() },
        "connection offset is past the end of the log; continuing from the end",
      );
      this.position = log.end();
      offsets.set(connection.id, this.position);
    } else if (saved) this.position = saved;
    else {
      this.position = connection.start === "now" ? log.end() : log.start();
      offsets.set(connection.id, this.position);
    }
    this.deadLetters = countDeadLetters(this.opts.dataDir, connection.id);
    this.unsubscribe = log.onAppend(() => {
      for (const s of this.sleepers) if (s.onAppend) s.wake();
    });
    this.running = this.loop().catch((err) => {
      this.opts.logger.error({ err, connectionId: connection.id }, "delivery consumer stopped");
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    for (const s of this.sleepers) s.wake();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { batchSize, maxWaitMs, log, connection } = this.opts;
    let buffer: StoredEvent[] = [];
    let readUpTo = this.position;
    let firstBufferedAt = 0;
    while (!this.stopped) {
      const want = Math.max(1, batchSize - buffer.length);
      const records = log.read(readUpTo, want);
      for (const r of records) {
        readUpTo = r.next;
        const event = JSON.parse(decoder.decode(r.payload)) as StoredEvent;
        if (event.sourceId !== connection.source) continue;
        const produced = await this.runChain(event);
        if (this.stopped) return; // the offset stays before this event: redelivered next run
        if (produced.length > 0 && buffer.length === 0) firstBufferedAt = Date.now();
        buffer.push(...produced);
      }
      const more = records.length === want;
      if (
        buffer.length >= batchSize ||
        (buffer.length > 0 && Date.now() - firstBufferedAt >= maxWaitMs)
      ) {
        if (!(await this.flush(buffer, readUpTo))) return;
        buffer = [];
        continue;
      }
      if (buffer.length === 0 && records.length > 0) this.commit(readUpTo);
      if (more) continue;
      const wait = buffer.length > 0 ? maxWaitMs - (Date.now() - firstBufferedAt) : 1000;
      await this.sleep(Math.max(1, wait), true);
    }
  }

  /** Delivers a batch with retries; false if stopped before it was confirmed. */
  private async flush(batch: StoredEvent[], upTo: LogPosition): Promise<boolean> {
    const { destination, maxAttempts, retryBaseMs, logger, connection } = this.opts;
    for (let attempt = 1; !this.stopped; attempt++) {
      const outcome = await destination.deliver(batch);
      if (outcome.ok) {
        for (const r of outcome.rejected ?? []) {
          writeDeadLetters(this.opts.dataDir, connection.id, [r.event], r.reason, attempt);
          this.deadLetters += 1;
          logger.warn(
            { connectionId: connection.id, messageId: r.event.messageId, reason: r.reason },
            "destination refused an event; written to the dead-letter file",
          );
        }
        this.commit(upTo);
        this.opts.onDelivered?.(connection.id, batch.length);
        return true;
      }
      if (!outcome.retry || attempt >= maxAttempts) {
        writeDeadLetters(this.opts.dataDir, connection.id, batch, outcome.reason, attempt);
        this.deadLetters += batch.length;
        logger.warn(
          {
            connectionId: connection.id,
            events: batch.length,
            reason: outcome.reason,
            attempts: attempt,
          },
          "delivery failed; batch written to the dead-letter file",
        );
        this.opts.onDeadLetter?.(connection.id, batch.length);
        this.commit(upTo);
        return true;
      }
      const wait = outcome.retryAfterMs ?? backoffMs(attempt, retryBaseMs);
      logger.info(
        { connectionId: connection.id, reason: outcome.reason, attempt, retryInMs: wait },
        "delivery will be retried",
      );
      await this.sleep(wait);
    }
    return false;
  }

  /** Runs the chain, retrying an event whose function asked for it (RetryError). */
  private async runChain(event: StoredEvent): Promise<StoredEvent[]> {
    const { chain, connection, maxAttempts, retryBaseMs, logger } = this.opts;
    for (let retries = 0; !this.stopped; retries++) {
      const outcome = await chain(connection, event, retries);
      if ("events" in outcome) return outcome.events;
      if (retries + 1 >= maxAttempts) {
        writeDeadLetters(this.opts.dataDir, connection.id, [event], outcome.retry, retries + 1);
        this.deadLetters += 1;
        this.opts.onDeadLetter?.(connection.id, 1);
        return [];
      }
      logger.info(
        { connectionId: connection.id, reason: outcome.retry, retries },
        "function asked to retry",
      );
      await this.sleep(backoffMs(retries + 1, retryBaseMs));
    }
    return [];
  }

  private commit(position: LogPosition): void {
    this.position = position;
    this.opts.offsets.set(this.opts.connection.id, position);
  }

  /** Waits `ms`; cut short by stop(), and by a new append when `onAppend`. */
  private sleep(ms: number, onAppend = false): Promise<void> {
    return new Promise((resolve) => {
      const sleeper = {
        onAppend,
        wake: () => {
          clearTimeout(timer);
          this.sleepers.delete(sleeper);
          resolve();
        },
      };
      const timer = setTimeout(sleeper.wake, ms);
      this.sleepers.add(sleeper);
    });
  }
}
