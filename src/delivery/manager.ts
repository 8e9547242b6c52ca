import type { Database } from "bun:sqlite";
import type { Logger } from "pino";
import type { ConnectionConfig, DestinationConfig, EventLogConfig } from "../config/schema.ts";
import type { EventLog, LogPosition } from "../log/interface.ts";
import { type ChainRunner, ConnectionConsumer } from "./consumer.ts";
import { FileDestination } from "./destinations/file.ts";
import { PostgresDestination } from "./destinations/postgres.ts";
import { WebhookDestination } from "./destinations/webhook.ts";
import type { Destination } from "./interface.ts";
import { SqliteOffsetStore } from "./offsets.ts";
import { applyRetention } from "./retention.ts";
import { type ConnectionStatus, connectionStatus } from "./status.ts";

/** Records a metrics scrape reads at most per connection to count its lag. */
const STATUS_SCAN_CAP = 20_000;

export interface DeliveryOptions {
  connections: ConnectionConfig[];
  log: EventLog;
  db: Database;
  dataDir: string;
  retention: EventLogConfig["retention"];
  chain: ChainRunner;
  logger: Logger;
  /** Other positions retention must respect (the dedup checkpoint). */
  extraReaders?: () => { id: string; position: LogPosition }[];
  retentionIntervalMs?: number;
}

/** A connection with a server-side destination has a consumer; `device` ones do not. */
export function isServerSide(c: ConnectionConfig): boolean {
  return c.destination.type !== "device";
}

function createDestination(d: Exclude<DestinationConfig, { type: "device" }>): Destination {
  switch (d.type) {
    case "webhook":
      return new WebhookDestination({ url: d.url, headers: d.headers });
    case "postgres":
      return new PostgresDestination({ url: d.url, table: d.table });
    case "file":
      return new FileDestination({ path: d.path, maxBytes: d.maxBytes });
  }
}

/** Starts one consumer per server-side connection, and applies log retention. */
export class DeliveryManager {
  readonly consumers: ConnectionConsumer[] = [];
  private readonly destinations: Destination[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;
  /** Connections that held back a segment retention would have deleted, at the last pass. */
  private holding = new Set<string>();

  constructor(private readonly opts: DeliveryOptions) {}

  start(): void {
    const offsets = new SqliteOffsetStore(this.opts.db);
    for (const connection of this.opts.connections.filter(isServerSide)) {
      const d = connection.destination as Exclude<DestinationConfig, { type: "device" }>;
      const destination = createDestination(d);
      this.destinations.push(destination);
      // Databases and disks are retried for ever: a passing outage never skips events.
      const defaultAttempts = d.type === "webhook" ? 8 : Number.POSITIVE_INFINITY;
      const consumer = new ConnectionConsumer({
        connection,
        log: this.opts.log,
        offsets,
        destination,
        chain: this.opts.chain,
        logger: this.opts.logger,
        dataDir: this.opts.dataDir,
        batchSize: d.batchSize ?? 100,
        maxWaitMs: d.maxWaitMs ?? 1000,
        maxAttempts: d.maxAttempts ?? defaultAttempts,
        retryBaseMs: d.retryBaseMs ?? 500,
      });
      consumer.start();
      this.consumers.push(consumer);
    }
    this.timer = setInterval(() => this.retain(), this.opts.retentionIntervalMs ?? 60_000);
    this.timer.unref?.();
  }

  /** One retention pass (also run on a timer). */
  retain(): number[] {
    this.holding = new Set();
    try {
      return applyRetention({
        log: this.opts.log,
        retention: this.opts.retention,
        readers: [
          ...this.consumers.map((c) => ({ id: c.id, position: c.offset() })),
          ...(this.opts.extraReaders?.() ?? []),
        ],
        logger: this.opts.logger,
        onBehind: (ids) => {
          this.holding = new Set(ids);
        },
      });
    } catch (err) {
      this.opts.logger.error({ err }, "retention pass failed");
      return [];
    }
  }

  /**
   * Each consumer's lag and dead letters, for /metrics. The lag scan stops at
   * `STATUS_SCAN_CAP` records so a scrape stays cheap (`sluice connections` counts all).
   */
  status(): (ConnectionStatus & { retentionHeld: boolean })[] {
    return this.consumers.map((c) => ({
      ...connectionStatus(this.opts.dataDir, c.connection, c.offset(), {
        cap: STATUS_SCAN_CAP,
        deadLetters: c.deadLetters,
      }),
      retentionHeld: this.holding.has(c.id),
    }));
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    // Consumers first mark themselves stopped; closing the destinations then cuts short a
    // delivery in flight (it is retried after the restart), so shutdown stays quick.
    const stopped = Promise.all(this.consumers.map((c) => c.stop()));
    await Promise.all(this.destinations.map((d) => d.close()));
    await stopped;
  }
}
