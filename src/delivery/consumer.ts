import type { Logger } from "pino";
import type { ConnectionConfig } from "../config/schema.ts";
import type { StoredEvent } from "../events/schema.ts";
import { comparePositions, type EventLog, type LogPosition } from "../log/interface.ts";
import type { Clock } from "./clock.ts";
import type { ConnectionHealth } from "./health.ts";
import type { OffsetStore } from "./interface.ts";
import type { ConnectionPipeline, Produced } from "./pipeline.ts";

export interface ConsumerOptions {
  connection: ConnectionConfig;
  log: EventLog;
  offsets: OffsetStore;
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
  /** How the pipeline waits between retries, and learns that the consumer stopped. */
  private readonly waiter = { stopped: false, sleep: (ms: number) => this.sleep(ms) };

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
    this.unsubscribe = log.onAppend(() => {
      for (const s of this.sleepers) if (s.onAppend) s.wake();
    });
    this.running = this.run();
  }

  /** The loop, started again from the confirmed offset if it fails. */
  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.loop();
      } catch (err) {
        this.opts.logger.error(
          { err, connectionId: this.id, retryInMs: RESTART_MS },
          "delivery consumer failed; starting again from its confirmed offset",
        );
        await this.sleep(RESTART_MS);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.waiter.stopped = true;
    this.unsubscribe?.();
    for (const s of this.sleepers) s.wake();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { batchSize, maxWaitMs, log, connection, pipeline, health, clock } = this.opts;
    const { waiter } = this;
    let buffer: Produced[] = [];
    let readUpTo = this.position;
    let firstBufferedAt = 0;
    while (!this.stopped) {
      const want = Math.max(1, batchSize - buffer.length);
      const records = log.read(readUpTo, want);
      for (const r of records) {
        readUpTo = r.next;
        const event = JSON.parse(decoder.decode(r.payload)) as StoredEvent;
        if (event.sourceId !== connection.source) continue;
        const produced = await pipeline.process(event, waiter, health);
        // Stopped: the offset stays before this event, which is delivered after the restart.
        if (produced === null) return;
        if (!Array.isArray(produced)) continue; // dead-lettered
        if (produced.length > 0 && buffer.length === 0) firstBufferedAt = clock.now();
        buffer.push(...produced);
      }
      const more = records.length === want;
      if (
        buffer.length >= batchSize ||
        (buffer.length > 0 && clock.now() - firstBufferedAt >= maxWaitMs)
      ) {
        const sent = await pipeline.deliver(buffer, waiter, health);
        if ("stopped" in sent) return;
        // Delivered or dead-lettered (durably): either way the offset may move past it.
        this.commit(readUpTo);
        buffer = [];
        continue;
      }
      if (buffer.length === 0 && records.length > 0) this.commit(readUpTo);
      if (more) continue;
      const wait = buffer.length > 0 ? maxWaitMs - (clock.now() - firstBufferedAt) : 1000;
      await this.sleep(Math.max(1, wait), true);
    }
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
          cancel();
          this.sleepers.delete(sleeper);
          resolve();
        },
      };
      const cancel = this.opts.clock.setTimer(() => sleeper.wake(), ms);
      this.sleepers.add(sleeper);
    });
  }
}
