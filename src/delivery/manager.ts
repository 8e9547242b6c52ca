import type { Logger } from "pino";
import type { ConnectionConfig, EventLogConfig } from "../config/schema.ts";
import {
  type Backlog,
  BacklogCountingError,
  type LogCursor,
  type LogStream,
  type RetentionResult,
} from "../log/stream.ts";
import { StorageUnavailableError } from "../storage/unavailable.ts";
import type { ChainRunner } from "./chain.ts";
import { type Clock, systemClock } from "./clock.ts";
import { ConnectionConsumer } from "./consumer.ts";
import type { DeadLetter, DeadLetterStore } from "./dead-letters/interface.ts";
import { importLegacyDeadLetters } from "./dead-letters/legacy.ts";
import { createDestination, type ServerSideDestination } from "./destinations/create.ts";
import { ConnectionHealth } from "./health.ts";
import type { Destination } from "./interface.ts";
import type { PauseStore } from "./paused.ts";
import { ConnectionPipeline } from "./pipeline.ts";
import { type RedriveReport, type RedriveSelection, redriveDeadLetters } from "./redrive.ts";
import { type ReplayJob, type ReplayRange, startReplay } from "./replay.ts";
import { streamReplaySource } from "./replay-source.ts";
import { retryPolicy } from "./retry.ts";
import { type ConnectionState, connectionState } from "./state.ts";
import type { DeliveryTrace } from "./trace/interface.ts";

export interface DeliveryOptions {
  connections: ConnectionConfig[];
  /** The event log: each connection reads it through a durable consumer named after it (retention too). */
  log: LogStream;
  dataDir: string;
  retention: EventLogConfig["retention"];
  chain: ChainRunner;
  logger: Logger;
  deadLetters: DeadLetterStore;
  trace: DeliveryTrace;
  paused: PauseStore;
  clock?: Clock;
  /** Other readers retention must respect: records after their cursor are kept (the dedup checkpoint). */
  extraReaders?: () => { id: string; cursor: LogCursor }[];
  retentionIntervalMs?: number;
  /** How often dead letters are counted again (the CLI may redrive beside the server). */
  countIntervalMs?: number;
  /** How often each connection's backlog is asked of the log (`/metrics` also asks before each scrape). */
  backlogIntervalMs?: number;
}

/** A connection id that is not configured (or has no server-side destination). */
export class UnknownConnectionError extends Error {
  constructor(
    readonly connectionId: string,
    /** The ids that are. */
    readonly known: string[],
  ) {
    super(
      `unknown connection ${connectionId}; connections: ${known.length > 0 ? known.join(", ") : "none"}`,
    );
    this.name = "UnknownConnectionError";
  }
}

/** A connection with a server-side destination has a consumer; `device` ones do not. */
export function isServerSide(c: ConnectionConfig): boolean {
  return c.destination.type !== "device";
}

/** One configured connection as it runs: its destination, pipeline and (unless paused) consumer. */
interface Running {
  connection: ConnectionConfig;
  destination: Destination;
  pipeline: ConnectionPipeline;
  consumer: ConnectionConsumer | null;
}

/**
 * Runs delivery (SPEC 8): one consumer per server-side connection, log retention, and
 * what people do to connections while the server runs (reload, pause, resume,
 * redrive). Its `connectionStates()` is the one place their state is read from.
 */
export class DeliveryManager {
  private readonly running = new Map<string, Running>();
  /** Connections whose consumer is being stopped (a reload, a removal): they hold retention until it has. */
  private readonly stopping = new Set<string>();
  /** Kept across a connection's restarts (pause, reload). */
  private readonly health = new Map<string, ConnectionHealth>();
  private paused = new Set<string>();
  /** Events in each connection's dead letters. */
  private deadLetterEvents = new Map<string, number>();
  /** Each connection's backlog, as the log last said (counters, never a scan per scrape). */
  private readonly backlogs = new Map<string, Backlog>();
  /** Connections whose backlog the log could not tell at the last ask (warned once, until it can). */
  private backlogFailing = new Set<string>();
  private refreshing: Promise<void> | null = null;
  /** Backlog counts in progress a refresh is already waiting for (one refresh each when they end). */
  private readonly countsAwaited = new WeakSet<Promise<void>>();
  private readonly clock: Clock;
  private timers: ReturnType<typeof setInterval>[] = [];
  /** Connections that held back records retention would have deleted, at the last pass. */
  private holding = new Set<string>();
  private retaining: Promise<RetentionResult | undefined> | null = null;
  /** Starts and stops of consumers, one at a time. */
  private lifecycle: Promise<unknown> = Promise.resolve();
  private readonly redriving = new Map<string, Promise<unknown>>();
  /** Replays running in the background (the admin API's), stopped with the server. */
  private readonly replays = new Set<ReplayJob>();

  constructor(private readonly opts: DeliveryOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  async start(): Promise<void> {
    await importLegacyDeadLetters(this.opts.dataDir, this.opts.deadLetters, this.opts.logger);
    this.paused = await this.opts.paused.paused();
    await this.refreshCounts();
    for (const connection of this.opts.connections.filter(isServerSide)) this.add(connection);
    this.timers = [
      setInterval(() => void this.retain(), this.opts.retentionIntervalMs ?? 60_000),
      setInterval(() => void this.refreshCounts(), this.opts.countIntervalMs ?? 5000),
      setInterval(() => void this.refreshBacklogs(), this.opts.backlogIntervalMs ?? 1000),
    ];
    // Not awaited: the file log counts a backlog it does not know yet (the first start
    // after an upgrade, a destination down for a day) in the background; until then a
    // connection's lag is unknown (null), and the server listens meanwhile.
    void this.refreshBacklogs();
    for (const t of this.timers) t.unref?.();
  }

  /** Ids of the server-side connections that run. */
  ids(): string[] {
    return [...this.running.keys()];
  }

  /**
   * Makes `connections` the running set (a config reload): added ones start, removed
   * ones stop, changed ones restart with their new config. Returns at once; the
   * changes happen in order behind it.
   */
  applyConnections(connections: ConnectionConfig[]): Promise<void> {
    return this.serially(async () => {
      const next = new Map(connections.filter(isServerSide).map((c) => [c.id, c]));
      for (const [id, r] of this.running) {
        const wanted = next.get(id);
        if (wanted && Bun.deepEquals(wanted, r.connection)) continue;
        await this.remove(r);
      }
      for (const [id, c] of next) if (!this.running.has(id)) this.add(c);
    });
  }

  /** Stops delivering to a connection (it keeps its offset), until resumed; kept across restarts. */
  pause(connectionId: string): Promise<void> {
    const r = this.get(connectionId);
    return this.serially(async () => {
      await this.opts.paused.set(connectionId, true);
      this.paused.add(connectionId);
      const consumer = r.consumer;
      r.consumer = null;
      await consumer?.stop();
      this.opts.logger.info({ connectionId }, "connection paused");
    });
  }

  resume(connectionId: string): Promise<void> {
    const r = this.get(connectionId);
    return this.serially(async () => {
      await this.opts.paused.set(connectionId, false);
      this.paused.delete(connectionId);
      if (!r.consumer && this.running.get(connectionId) === r) this.startConsumer(r);
      this.opts.logger.info({ connectionId }, "connection resumed");
    });
  }

  /** Sends dead letters again (one redrive per connection at a time). */
  async redrive(connectionId: string, selection: RedriveSelection): Promise<RedriveReport> {
    const r = this.get(connectionId);
    const before = this.redriving.get(connectionId) ?? Promise.resolve();
    const run = before.then(() => redriveDeadLetters(r.pipeline, this.opts.deadLetters, selection));
    this.redriving.set(
      connectionId,
      run.catch(() => {}),
    );
    const report = await run;
    // The destination took a letter: it is up, whatever the connection's last batch said.
    if (report.delivered > 0 && report.failed.length === 0) {
      const health = this.healthOf(connectionId);
      if (health.phase === "failing") health.succeeded(this.clock.now());
    }
    this.opts.logger.info(
      {
        connectionId,
        delivered: report.delivered,
        events: report.events,
        failed: report.failed.length,
        skipped: report.skipped,
      },
      "dead letters redriven",
    );
    await this.refreshCounts();
    return report;
  }

  /**
   * Starts re-sending a connection's stored events in a range (the admin API): resolves
   * once they are counted, and sends them in the background; the log says when it ends.
   */
  async replay(
    connectionId: string,
    range: ReplayRange,
  ): Promise<{ replayId: string; events: number }> {
    const r = this.get(connectionId);
    const { connection } = r;
    const d = connection.destination as ServerSideDestination;
    const job = await startReplay({
      // Through the log's seam; a damaged record is skipped and reported by the log itself.
      open: (start) => streamReplaySource(this.opts.log, connection.source, start),
      pipeline: r.pipeline,
      range,
      batchSize: d.batchSize ?? 100,
      now: () => this.clock.now(),
    });
    const { logger } = this.opts;
    logger.info({ connectionId, replayId: job.replayId, events: job.total }, "replay started");
    this.replays.add(job);
    void job.done
      .then((s) =>
        logger.info(
          {
            connectionId,
            replayId: s.replayId,
            events: s.total,
            delivered: s.delivered,
            dropped: s.dropped,
            failed: s.failed,
            ms: s.elapsedMs,
            stopped: s.stopped,
          },
          "replay finished",
        ),
      )
      .catch((err) => logger.error({ err, connectionId, replayId: job.replayId }, "replay failed"))
      .finally(() => this.replays.delete(job));
    return { replayId: job.replayId, events: job.total };
  }

  /** A connection's dead letters, oldest first. */
  deadLetters(
    connectionId: string,
    opts?: { limit?: number; after?: string },
  ): Promise<DeadLetter[]> {
    this.get(connectionId);
    return this.opts.deadLetters.list(connectionId, opts);
  }

  /** The pipeline of a running connection (a replay sends through it). */
  pipeline(connectionId: string): ConnectionPipeline {
    return this.get(connectionId).pipeline;
  }

  connection(connectionId: string): ConnectionConfig {
    return this.get(connectionId).connection;
  }

  /** The running server-side connections of a source. */
  connectionsOf(sourceId: string): ConnectionConfig[] {
    return [...this.running.values()].map((r) => r.connection).filter((c) => c.source === sourceId);
  }

  /**
   * Asks the log for each connection's backlog (its consumer's counters: no scan), for
   * `connectionStates()`. Runs on a timer and before each `/metrics` scrape (which waits
   * for it only briefly: NATS may be slow). Each connection's value is kept as soon as
   * it is known, so a slow pass shows the ones it got.
   */
  refreshBacklogs(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        for (const { connection } of [...this.running.values()]) {
          try {
            // No consumer yet: nothing of it to deliver.
            const b = await this.opts.log.backlog(connection.id, connection.source);
            this.backlogs.set(connection.id, b ?? { records: 0 });
            if (this.backlogFailing.delete(connection.id)) {
              this.opts.logger.info(
                { connectionId: connection.id },
                "connection backlog known again",
              );
            }
          } catch (err) {
            // Being counted (the file log, after start): unknown until it is (no
            // warning), asked again as soon as it is.
            if (err instanceof BacklogCountingError) {
              if (!this.countsAwaited.has(err.counted)) {
                this.countsAwaited.add(err.counted);
                void err.counted.then(() => this.refreshAfterCount());
              }
              continue;
            }
            // Asked every second and before each scrape: one warning when it starts
            // failing (NATS down), one info line when it works again. Meanwhile /ready
            // says why (the log's health) and the lag metrics keep the last value.
            if (!this.backlogFailing.has(connection.id)) {
              this.backlogFailing.add(connection.id);
              this.opts.logger.warn(
                { err, connectionId: connection.id },
                "connection backlog unknown (warned once until it is known again)",
              );
            }
          }
        }
        for (const id of this.backlogFailing)
          if (!this.running.has(id)) this.backlogFailing.delete(id);
        for (const id of this.backlogs.keys()) if (!this.running.has(id)) this.backlogs.delete(id);
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** A refresh once a count ended (one at a time: a refresh in progress may have asked too early). */
  private refreshAfterCount(): void {
    const again = () => void this.refreshBacklogs();
    if (this.refreshing) void this.refreshing.then(again);
    else again();
  }

  /**
   * Every server-side connection's state (SPEC 8): what `/metrics`, the admin API and
   * the inspector show. Lag is the log's backlog of the connection's consumer, as last
   * asked (`refreshBacklogs`); null while it was never known (being counted after start).
   */
  connectionStates(): ConnectionState[] {
    return [...this.running.values()].map((r) => {
      const { connection } = r;
      const backlog = this.backlogs.get(connection.id);
      const seconds = !backlog
        ? null
        : backlog.oldestAt === undefined
          ? 0
          : Math.max(0, (Date.now() - backlog.oldestAt) / 1000);
      return connectionState({
        connection,
        health: this.healthOf(connection.id),
        paused: this.paused.has(connection.id),
        lag: { events: backlog ? backlog.records : null, seconds },
        deadLetters: this.deadLetterEvents.get(connection.id) ?? 0,
        retentionHeld: this.holding.has(connection.id),
      });
    });
  }

  /**
   * One retention pass (also run on a timer; one at a time), through the log's own
   * `retain`: the file log deletes segments, NATS purges the stream. Every running
   * server-side connection's consumer holds what it has not committed (paused ones
   * too, and one being stopped for a reload until it has); those holding records back
   * show as `retentionHeld`. Each instance runs it
   * (the backends make that safe). Skipped while the log is unreachable (NATS away:
   * StorageUnavailableError); the file log's runs while its appends fail, since a full
   * disk is what it frees.
   */
  retain(): Promise<RetentionResult | undefined> {
    this.retaining ??= this.retainOnce().finally(() => {
      this.retaining = null;
    });
    return this.retaining;
  }

  private async retainOnce(): Promise<RetentionResult | undefined> {
    const { log, retention } = this.opts;
    try {
      const result = await log.retain({
        maxAgeMs: retention.maxAgeHours * 3_600_000,
        maxBytes: retention.maxBytes,
        // Running ones and those still stopping (a reload of a lagging connection
        // takes it out of `running` before its consumer has stopped).
        consumers: [...new Set([...this.running.keys(), ...this.stopping])],
        readers: this.opts.extraReaders?.() ?? [],
      });
      this.holding = new Set(result.holding);
      return result;
    } catch (err) {
      // The log unreachable (NATS away): /ready says why; the next pass tries again. The
      // file log's retain works while its appends fail (a full disk is what it frees).
      // `holding` stays as the last pass that worked left it: a failed pass says
      // nothing about who holds records back.
      if (err instanceof StorageUnavailableError) return undefined;
      this.opts.logger.error({ err }, "retention pass failed");
      return undefined;
    }
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const job of this.replays) job.stop();
    await this.serially(async () => {
      const all = [...this.running.values()];
      this.running.clear();
      // Consumers first mark themselves stopped; closing the destinations then cuts short a
      // delivery in flight (it is retried after the restart), so shutdown stays quick.
      const stopped = Promise.all(all.map((r) => r.consumer?.stop()));
      await Promise.all(all.map((r) => r.destination.close()));
      await stopped;
    });
    await Promise.all(this.redriving.values());
    await Promise.all([...this.replays].map((j) => j.done.catch(() => {})));
    // A retention pass in flight ends before the log is closed (its errors are logged).
    while (this.retaining) await this.retaining.catch(() => undefined);
  }

  private get(connectionId: string): Running {
    const r = this.running.get(connectionId);
    if (!r) throw new UnknownConnectionError(connectionId, this.ids());
    return r;
  }

  private healthOf(connectionId: string): ConnectionHealth {
    let h = this.health.get(connectionId);
    if (!h) {
      h = new ConnectionHealth();
      this.health.set(connectionId, h);
    }
    return h;
  }

  private add(connection: ConnectionConfig): void {
    const d = connection.destination as ServerSideDestination;
    const destination = createDestination(d);
    const pipeline = new ConnectionPipeline({
      connection,
      destination,
      chain: this.opts.chain,
      deadLetters: this.opts.deadLetters,
      trace: this.opts.trace,
      policy: retryPolicy(d),
      clock: this.clock,
      logger: this.opts.logger,
      onDeadLetter: (id, events) => {
        this.deadLetterEvents.set(id, (this.deadLetterEvents.get(id) ?? 0) + events);
      },
    });
    const r: Running = { connection, destination, pipeline, consumer: null };
    this.running.set(connection.id, r);
    if (!this.paused.has(connection.id)) this.startConsumer(r);
  }

  private startConsumer(r: Running): void {
    const d = r.connection.destination as ServerSideDestination;
    r.consumer = new ConnectionConsumer({
      connection: r.connection,
      log: this.opts.log,
      pipeline: r.pipeline,
      health: this.healthOf(r.connection.id),
      clock: this.clock,
      logger: this.opts.logger,
      batchSize: d.batchSize ?? 100,
      maxWaitMs: d.maxWaitMs ?? 1000,
    });
    r.consumer.start();
  }

  private async remove(r: Running): Promise<void> {
    const { id } = r.connection;
    this.stopping.add(id);
    this.running.delete(id);
    try {
      const stopped = r.consumer?.stop();
      await r.destination.close();
      await stopped;
    } finally {
      this.stopping.delete(id);
    }
  }

  private serially(fn: () => Promise<void>): Promise<void> {
    const run = this.lifecycle.then(fn);
    this.lifecycle = run.catch((err) => {
      this.opts.logger.error({ err }, "changing the running connections failed");
    });
    return run;
  }

  private async refreshCounts(): Promise<void> {
    try {
      const counts = await this.opts.deadLetters.counts();
      this.deadLetterEvents = new Map([...counts].map(([id, c]) => [id, c.events]));
    } catch (err) {
      this.opts.logger.error({ err }, "dead letters could not be counted");
    }
  }
}
