import type { Logger } from "pino";
import type { ConnectionConfig } from "../config/schema.ts";
import type { StoredEvent } from "../events/schema.ts";
import {
  type LogConsumer,
  LogConsumerConflictError,
  type LogStream,
  type StreamRecord,
} from "../log/stream.ts";
import type { Clock } from "./clock.ts";
import type { ConnectionHealth } from "./health.ts";
import type { ConnectionPipeline, Produced } from "./pipeline.ts";

export interface ConsumerOptions {
  connection: ConnectionConfig;
  /** The event log; the connection reads it through a durable consumer named after it. */
  log: LogStream;
  /** Functions, destination, retries and dead letters: everything after the read. */
  pipeline: ConnectionPipeline;
  health: ConnectionHealth;
  clock: Clock;
  logger: Logger;
  batchSize: number;
  maxWaitMs: number;
}

/** A consumer whose loop failed (its dead-letter store down, say) starts it again after this. */
const RESTART_MS = 5000;
/** How long one waiting read of the log lasts before it is asked again (a stop never waits longer). */
const READ_WAIT_MS = 1000;

const decoder = new TextDecoder();

/**
 * Reads one connection's source events from the log in order (a durable `LogConsumer`
 * named after the connection, filtered to its source), runs its functions, and
 * delivers batches. A batch's records are committed only after the destination
 * confirmed it (or it was dead-lettered): delivery is at-least-once.
 */
export class ConnectionConsumer {
  private stopped = false;
  private running: Promise<void> | null = null;
  private consumer: LogConsumer | null = null;
  /** A waiting read still out (its records are the next ones, whenever it ends). */
  private pendingRead: Promise<StreamRecord[]> | null = null;
  /** Sleepers to wake on stop. */
  private readonly sleepers = new Set<() => void>();
  /** How the pipeline waits between retries, and learns that the consumer stopped. */
  private readonly waiter = { stopped: false, sleep: (ms: number) => this.sleep(ms) };

  constructor(private readonly opts: ConsumerOptions) {}

  get id(): string {
    return this.opts.connection.id;
  }

  get connection(): ConnectionConfig {
    return this.opts.connection;
  }

  start(): void {
    this.running = this.run();
  }

  /** The loop, started again from the committed records if it fails. */
  private async run(): Promise<void> {
    const { connection, log } = this.opts;
    while (!this.stopped) {
      try {
        this.consumer = await log.consumer(connection.id, {
          start: connection.start === "now" ? "now" : "oldest",
          sourceId: connection.source,
        });
        if (this.stopped) break;
        await this.loop(this.consumer);
      } catch (err) {
        this.opts.logger.error(
          { err, connectionId: this.id, retryInMs: RESTART_MS },
          "delivery consumer failed; starting again from its confirmed offset",
        );
        // The log refuses this connection's consumer (NATS: its source changed): shown as
        // the connection's last error (admin API, inspector) until resolved.
        if (err instanceof LogConsumerConflictError) {
          this.opts.health.lastError = { at: this.opts.clock.now(), message: err.message };
        }
        await this.closeConsumer();
        await this.sleep(RESTART_MS);
      }
    }
    await this.closeConsumer();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.waiter.stopped = true;
    for (const wake of this.sleepers) wake();
    await this.running;
  }

  /** Gives back what was read and not committed (read again by the next consumer). */
  private async closeConsumer(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = null;
    await consumer?.close().catch(() => undefined);
    await this.pendingRead?.catch(() => undefined);
    this.pendingRead = null;
  }

  private async loop(consumer: LogConsumer): Promise<void> {
    const { batchSize, maxWaitMs, pipeline, health, clock } = this.opts;
    const { waiter } = this;
    let buffer: Produced[] = [];
    let last: string | undefined;
    let firstBufferedAt = 0;
    let wait = 0;
    while (!this.stopped) {
      const want = Math.max(1, batchSize - buffer.length);
      const records = await this.read(consumer, want, wait);
      for (const r of records) {
        last = r.cursor;
        const event = JSON.parse(decoder.decode(r.payload)) as StoredEvent;
        const produced = await pipeline.process(event, waiter, health);
        // Stopped: this event is not committed, and is delivered after the restart.
        if (produced === null) return;
        if (!Array.isArray(produced)) continue; // dead-lettered
        if (produced.length > 0 && buffer.length === 0) firstBufferedAt = clock.now();
        buffer.push(...produced);
      }
      const more = records.length >= want;
      if (
        buffer.length >= batchSize ||
        (buffer.length > 0 && clock.now() - firstBufferedAt >= maxWaitMs)
      ) {
        const sent = await pipeline.deliver(buffer, waiter, health);
        if ("stopped" in sent) return;
        // Delivered or dead-lettered (durably): either way its records are done.
        if (last !== undefined) await consumer.commit(last);
        buffer = [];
        wait = 0;
        continue;
      }
      if (buffer.length === 0 && records.length > 0) await consumer.commit(last!);
      if (more) {
        wait = 0;
        continue;
      }
      wait = buffer.length > 0 ? Math.max(1, maxWaitMs - (clock.now() - firstBufferedAt)) : 1000;
    }
  }

  /**
   * Up to `max` records; when there are none, waits up to `waitMs` of the delivery
   * clock for the first (woken by an append and by stop). A waiting read that outlives
   * the wait stays out: its records are the next ones read.
   */
  private async read(consumer: LogConsumer, max: number, waitMs: number): Promise<StreamRecord[]> {
    if (!this.pendingRead) {
      const now = await consumer.read(max, 0);
      if (now.length > 0 || waitMs <= 0) return now;
      this.pendingRead = consumer.read(max, READ_WAIT_MS);
    }
    const pending = this.pendingRead;
    let wake = () => {};
    const timedOut = new Promise<null>((resolve) => {
      wake = () => resolve(null);
    });
    const cancel = this.opts.clock.setTimer(wake, waitMs);
    this.sleepers.add(wake);
    const got = await Promise.race([pending, timedOut]);
    cancel();
    this.sleepers.delete(wake);
    if (got === null) return [];
    this.pendingRead = null;
    return got;
  }

  /** Waits `ms` of the delivery clock; cut short by stop(). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        cancel();
        this.sleepers.delete(wake);
        resolve();
      };
      const cancel = this.opts.clock.setTimer(wake, ms);
      this.sleepers.add(wake);
    });
  }
}
