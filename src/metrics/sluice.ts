import type { ResolvedKey } from "../auth/resolve.ts";
import type { DedupStats } from "../dedup/interface.ts";
import type { IngestResult } from "../ingest/service.ts";
import type { SegmentInfo } from "../log/interface.ts";
import { Counter, Gauge, Histogram, Registry } from "./registry.ts";

/** What /metrics shows of one delivery connection (src/delivery/state.ts). */
export interface ConnectionGaugeInput {
  id: string;
  state: "running" | "retrying" | "paused" | "failing";
  /** null: not known yet (being counted); its series is left out. */
  lag: { events: number | null; seconds: number | null };
  lastSuccessAt: string | null;
  attempts: number;
  deadLetters: number;
  retentionHeld: boolean;
}

const CONNECTION_STATES = ["running", "retrying", "paused", "failing"] as const;

/** What the function runtime reports: one call per function run. */
export interface FunctionMetrics {
  /** A function ran for `ms` milliseconds; `error` when it threw or timed out. */
  functionRun(functionId: string, ms: number, error: boolean): void;
}

export interface SluiceMetricsOptions {
  version: string;
  /** How long a scrape waits for its `beforeScrape` refreshers before it shows the last values (500 ms). */
  refreshDeadlineMs?: number;
  /** The event log's segments, read at each scrape (log size and segment count). */
  segments?: () => SegmentInfo[];
  /**
   * The log is a NATS stream (SPEC 9): its size in bytes as last read (undefined: not
   * read yet, no series), instead of `segments` (no segment count then).
   */
  streamBytes?: () => number | undefined;
  /** The dedup store's keys and memory, read at each scrape. */
  dedup?: () => DedupStats;
}

/** The outcomes `sluice_events_total` counts, per source. */
export type EventOutcome = "accepted" | "duplicate" | "rejected" | "rate_limited";
const OUTCOMES: EventOutcome[] = ["accepted", "duplicate", "rejected", "rate_limited"];

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const FLUSH_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

/**
 * Every metric sluice exposes on `/metrics`. Labels carry route patterns, source ids,
 * key ids and function ids: never a write key, never a raw path (a path may hold one).
 * The recording methods are arrow properties so they can be handed on as callbacks.
 */
export class SluiceMetrics implements FunctionMetrics {
  private readonly registry = new Registry();
  private readonly startedAt = Date.now() / 1000;
  private readonly refreshers: (() => Promise<void>)[] = [];
  private readonly refreshDeadlineMs: number;

  readonly requests = this.registry.register(
    new Counter("sluice_http_requests_total", "HTTP requests by method, route and status.", [
      "method",
      "route",
      "status",
    ]),
  );
  readonly requestSeconds = this.registry.register(
    new Histogram(
      "sluice_http_request_duration_seconds",
      "Time from receiving a request until its response is ready to send, by method and route.",
      SECONDS,
      ["method", "route"],
    ),
  );
  readonly events = this.registry.register(
    new Counter(
      "sluice_events_total",
      "Events by source and outcome: accepted (stored), duplicate, rejected (invalid), rate_limited.",
      ["source", "outcome"],
    ),
  );
  readonly rateLimitedRequests = this.registry.register(
    new Counter(
      "sluice_rate_limited_requests_total",
      "Requests refused with 429, by source and write key id.",
      ["source", "key"],
    ),
  );
  readonly flushSeconds = this.registry.register(
    new Histogram(
      "sluice_log_flush_duration_seconds",
      "Event log group commits: write and fdatasync time (NATS: one append's publishes until their last ack).",
      FLUSH_SECONDS,
    ),
  );
  readonly flushedRecords = this.registry.register(
    new Counter(
      "sluice_log_flushed_records_total",
      "Records made durable in the event log (NATS: publish acks).",
    ),
  );
  readonly logCorruptRecords = this.registry.register(
    new Counter(
      "sluice_log_corrupt_records_total",
      "Damaged event log records found and skipped (each logged with its segment and offset).",
    ),
  );
  readonly logWriteFailures = this.registry.register(
    new Counter(
      "sluice_log_write_failures_total",
      "Event log appends that failed (disk full, permissions, a vanished segment file; NATS: unreachable, a publish refused or not acked in time).",
    ),
  );
  readonly functionRuns = this.registry.register(
    new Counter("sluice_function_runs_total", "Function runs by function id.", ["function"]),
  );
  readonly functionErrors = this.registry.register(
    new Counter(
      "sluice_function_errors_total",
      "Function runs that threw or timed out, by function id.",
      ["function"],
    ),
  );
  readonly functionSeconds = this.registry.register(
    new Histogram(
      "sluice_function_duration_seconds",
      "Function run time by function id.",
      [...SECONDS, 30],
      ["function"],
    ),
  );
  readonly configReloads = this.registry.register(
    new Counter(
      "sluice_config_reloads_total",
      "Config reloads (SIGHUP) by result: applied or refused.",
      ["result"],
    ),
  );

  constructor(opts: SluiceMetricsOptions) {
    this.refreshDeadlineMs = opts.refreshDeadlineMs ?? 500;
    const segments = opts.segments ?? (() => []);
    // Shown as 0 from the start, so an alert can watch them.
    this.logCorruptRecords.inc(0);
    this.logWriteFailures.inc(0);
    const streamBytes = opts.streamBytes;
    if (streamBytes) {
      this.registry.register(
        new Gauge(
          "sluice_log_bytes",
          "Size of the event log's NATS stream (nats stream info).",
          () => {
            const bytes = streamBytes();
            return bytes === undefined ? [] : bytes;
          },
        ),
      );
    } else {
      this.registry.register(
        new Gauge("sluice_log_bytes", "Total size of the event log's segment files.", () =>
          segments().reduce((n, s) => n + s.bytes, 0),
        ),
      );
      this.registry.register(
        new Gauge(
          "sluice_log_segments",
          "Number of event log segment files.",
          () => segments().length,
        ),
      );
    }
    const dedup = opts.dedup;
    if (dedup) {
      this.registry.register(
        new Gauge("sluice_dedup_keys", "Dedup keys inside the window.", () => dedup().keys),
      );
      this.registry.register(
        new Gauge(
          "sluice_dedup_memory_bytes",
          "Memory the dedup store holds for its keys (filter and keys not yet written).",
          () => dedup().memoryBytes,
        ),
      );
    }
    this.registry.register(
      new Gauge(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        () => process.memoryUsage().rss,
      ),
    );
    this.registry.register(
      new Gauge("sluice_memory_bytes", "JavaScript memory by kind (process.memoryUsage).", () => {
        const m = process.memoryUsage();
        return [
          [{ kind: "heap_used" }, m.heapUsed],
          [{ kind: "heap_total" }, m.heapTotal],
          [{ kind: "external" }, m.external],
          [{ kind: "array_buffers" }, m.arrayBuffers],
        ];
      }),
    );
    this.registry.register(
      new Gauge(
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch, in seconds.",
        () => this.startedAt,
      ),
    );
    this.registry.register(
      new Gauge("sluice_build_info", "The running sluice version (always 1).", () => [
        [{ version: opts.version }, 1],
      ]),
    );
  }

  /** Gauges of each delivery connection, read at each scrape. */
  connections(collect: () => ConnectionGaugeInput[]): void {
    // A value not known (null) leaves the connection's series out: absent, never a 0.
    const gauge = (name: string, help: string, value: (c: ConnectionGaugeInput) => number | null) =>
      this.registry.register(
        new Gauge(name, help, () =>
          collect().flatMap((c) => {
            const v = value(c);
            return v === null
              ? []
              : [[{ connection: c.id }, v] as [Record<string, string>, number]];
          }),
        ),
      );
    gauge(
      "sluice_connection_lag_events",
      "Events of the connection's source not yet confirmed by its destination (absent while being counted after start).",
      (c) => c.lag.events,
    );
    gauge(
      "sluice_connection_lag_seconds",
      "Age of the oldest event the connection's destination has not confirmed.",
      (c) => c.lag.seconds,
    );
    gauge(
      "sluice_connection_dead_letters",
      "Events held in the connection's dead letters (sluice deadletters list).",
      (c) => c.deadLetters,
    );
    gauge(
      "sluice_connection_attempts",
      "Failed delivery attempts since the connection's last success.",
      (c) => c.attempts,
    );
    gauge(
      "sluice_connection_last_success_timestamp_seconds",
      "When the connection's destination last confirmed a batch (0: not since start).",
      (c) => (c.lastSuccessAt ? Date.parse(c.lastSuccessAt) / 1000 : 0),
    );
    this.registry.register(
      new Gauge(
        "sluice_connection_state",
        "1 for the connection's current state (running, retrying, paused, failing), else 0.",
        () =>
          collect().flatMap((c) =>
            CONNECTION_STATES.map(
              (state) => [{ connection: c.id, state }, c.state === state ? 1 : 0] as const,
            ),
          ) as [Record<string, string>, number][],
      ),
    );
    gauge(
      "sluice_connection_retention_held",
      "1 when the connection holds back a segment retention would delete (it is behind).",
      (c) => (c.retentionHeld ? 1 : 0),
    );
  }

  /** The inspector's live view: clients connected now, and those dropped for reading too slowly. */
  liveClients(collect: () => { clients: number; dropped: number }): void {
    this.registry.register(
      new Gauge("sluice_live_clients", "Clients of the inspector's live stream.", () => [
        [{ state: "connected" }, collect().clients],
        [{ state: "dropped" }, collect().dropped],
      ]),
    );
  }

  /** Makes every event series of these sources exist at 0, so rates work from the start. */
  declareSources(sourceIds: string[]): void {
    for (const id of sourceIds) for (const o of OUTCOMES) this.events.inc(0, id, o);
  }

  /** One finished HTTP request; `route` is the route pattern, never the raw path. */
  request(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc(1, method, route, status);
    this.requestSeconds.observe(seconds, method, route);
  }

  /** The outcome of one ingest call (IngestService's `onResult`). */
  readonly eventsIngested = (sourceId: string, result: IngestResult): void => {
    if (result.accepted > 0) this.events.inc(result.accepted, sourceId, "accepted");
    if (result.duplicates > 0) this.events.inc(result.duplicates, sourceId, "duplicate");
    if (result.rejected.length > 0) {
      this.events.inc(result.rejected.length, sourceId, "rejected");
    }
  };

  /** A request of `cost` events refused by the rate limiter. */
  readonly rateLimited = (key: ResolvedKey, cost: number): void => {
    this.events.inc(cost, key.source.id, "rate_limited");
    this.rateLimitedRequests.inc(1, key.source.id, key.keyId);
  };

  /** One group commit of the event log (FileEventLog's `onFlush`). */
  readonly logFlushed = (seconds: number, records: number): void => {
    this.flushSeconds.observe(seconds);
    this.flushedRecords.inc(records);
  };

  /** A damaged record of the event log, skipped (FileEventLog's `onCorrupt`). */
  readonly logCorrupt = (): void => {
    this.logCorruptRecords.inc(1);
  };

  /** A failed append of the event log (FileEventLog's `onWriteFailure`). */
  readonly logWriteFailed = (): void => {
    this.logWriteFailures.inc(1);
  };

  readonly functionRun = (functionId: string, ms: number, error: boolean): void => {
    this.functionRuns.inc(1, functionId);
    this.functionErrors.inc(error ? 1 : 0, functionId); // the series exists from the first run
    this.functionSeconds.observe(ms / 1000, functionId);
  };

  configReloaded(applied: boolean): void {
    this.configReloads.inc(1, applied ? "applied" : "refused");
  }

  /** Runs `fn` before each scrape (`scrape()`): fresh values for gauges read synchronously. */
  beforeScrape(fn: () => Promise<void>): void {
    this.refreshers.push(fn);
  }

  /**
   * The exposition text, after the `beforeScrape` refreshers ran, or after
   * `refreshDeadlineMs` when one takes longer (NATS slow: a connection's backlog asks it
   * with 5 s timeouts): then the last values are shown and the refresh goes on behind,
   * so a scrape stays inside Prometheus' timeout. A failing refresher keeps its last values.
   */
  async scrape(): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.refreshDeadlineMs);
    });
    const refreshed = Promise.all(this.refreshers.map((fn) => fn().catch(() => undefined)));
    await Promise.race([refreshed, deadline]);
    clearTimeout(timer);
    return this.render();
  }

  /** The Prometheus text exposition of every metric. */
  render(): string {
    return this.registry.render();
  }
}
