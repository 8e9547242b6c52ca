import type { ConnectionPipeline, Produced, Waiter } from "./pipeline.ts";
import type { ReplayPosition, ReplayRecord, ReplaySource, ReplayStart } from "./replay-source.ts";

/** Where a replay starts or ends: a time (ms since the epoch) or a log position. */
export type ReplayPoint = { time: number } | { position: ReplayPosition };

/**
 * Stored events from `from` to `to`, half-open: times are [from, to); a position is a
 * point between two events, so `from` starts with the event after it and `to` ends
 * with the event before it. Without `to`: up to what is stored when the replay starts.
 */
export interface ReplayRange {
  from: ReplayPoint;
  to?: ReplayPoint;
}

export interface ReplayProgress {
  /** Stored events of the connection's source in the range. */
  total: number;
  /** Of them, run through the functions so far. */
  done: number;
  /** Events the destination confirmed (after functions: may differ from `done`). */
  delivered: number;
  /** Stored events the functions dropped. */
  dropped: number;
  /** Events the functions or the destination refused, or that gave up retrying. */
  failed: number;
  elapsedMs: number;
}

export interface ReplaySummary extends ReplayProgress {
  replayId: string;
  /** Set when it was stopped before the end. */
  stopped?: string;
  /** The first failures (up to 10). */
  failures: { messageIds: string[]; error: string }[];
}

/** A replay that has counted its events and is sending them. */
export interface ReplayJob {
  replayId: string;
  total: number;
  /** Resolves when the last event was sent (or the replay was stopped). */
  done: Promise<ReplaySummary>;
  stop(): void;
}

export interface ReplayOptions {
  /** Opens the connection's source's records from a start (a fresh reader each pass). */
  open: (start: ReplayStart) => Promise<ReplaySource>;
  pipeline: ConnectionPipeline;
  range: ReplayRange;
  batchSize: number;
  onProgress?: (p: ReplayProgress) => void;
  now?: () => number;
}

/**
 * Records are in receivedAt order only to within concurrent requests: a scan for a
 * time range reads this far past its end before it stops.
 */
const ORDER_SLACK_MS = 10_000;
const READ = 1000;

/** Calls `visit` for each record in the range, in log order, until it returns false. */
async function scan(
  opts: ReplayOptions,
  endTime: number | undefined,
  visit: (r: ReplayRecord) => Promise<boolean> | boolean,
): Promise<void> {
  const { from, to } = opts.range;
  const source = await opts.open("position" in from ? { after: from.position } : "oldest");
  const fromTime = "time" in from ? from.time : undefined;
  const toPosition = to && "position" in to ? to.position : undefined;
  try {
    for (;;) {
      const { records, end } = await source.read(READ);
      for (const r of records) {
        if (endTime !== undefined && r.receivedAt >= endTime + ORDER_SLACK_MS) return;
        const inRange =
          (fromTime === undefined || r.receivedAt >= fromTime) &&
          (endTime === undefined || r.receivedAt < endTime);
        if (inRange && !(await visit(r))) return;
        if (r.position === toPosition) return;
      }
      if (end) return;
    }
  } finally {
    source.close();
  }
}

/**
 * Re-sends a connection's stored events in a range through its functions to its
 * destination (SPEC 8), without touching the connection's own offset. The events are
 * counted first (for progress, and to say when the range holds none), then sent in
 * batches: a webhook gets the same Idempotency-Key as for the original delivery of
 * the same events, PostgreSQL keeps one row per messageId. What the functions or the
 * destination refuse is reported and logged, not dead-lettered: the events stay in
 * the log and the connection's own delivery of them is untouched.
 */
export async function startReplay(opts: ReplayOptions): Promise<ReplayJob> {
  const now = opts.now ?? Date.now;
  const startedAt = now();
  const replayId = Bun.randomUUIDv7();
  const { to } = opts.range;
  const endTime = to === undefined ? startedAt : "time" in to ? to.time : undefined;
  let total = 0;
  await scan(opts, endTime, () => {
    total++;
    return true;
  });
  const controller = new AbortController();
  const summary: ReplaySummary = {
    replayId,
    total,
    done: 0,
    delivered: 0,
    dropped: 0,
    failed: 0,
    elapsedMs: 0,
    failures: [],
  };
  const done =
    total === 0
      ? Promise.resolve(summary)
      : send(opts, summary, endTime, controller.signal, now, startedAt);
  return { replayId, total, done, stop: () => controller.abort() };
}

async function send(
  opts: ReplayOptions,
  summary: ReplaySummary,
  endTime: number | undefined,
  signal: AbortSignal,
  now: () => number,
  startedAt: number,
): Promise<ReplaySummary> {
  const { pipeline } = opts;
  const waiter: Waiter = {
    get stopped() {
      return signal.aborted;
    },
    sleep: (ms) =>
      new Promise((resolve) => {
        const timer = setTimeout(resolve, ms);
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
  const report = () => {
    summary.elapsedMs = now() - startedAt;
    opts.onProgress?.(summary);
  };
  const failed = (messageIds: string[], error: string) => {
    summary.failed += messageIds.length;
    if (summary.failures.length < 10) summary.failures.push({ messageIds, error });
  };
  let buffer: Produced[] = [];
  const flush = async () => {
    if (buffer.length === 0) return;
    const batch = buffer;
    buffer = [];
    const sent = await pipeline.deliver(batch, waiter, undefined, "replay");
    if ("stopped" in sent) return;
    if (sent.delivered) summary.delivered += batch.length;
    else
      failed(
        batch.map((p) => p.event.messageId),
        sent.failure.message,
      );
    pipeline.trace(
      batch.map((p) => p.origin),
      now(),
      sent.delivered
        ? { kind: "replay", replayId: summary.replayId, ok: true }
        : { kind: "replay", replayId: summary.replayId, ok: false, error: sent.failure.message },
    );
    report();
  };
  await scan(opts, endTime, async (r) => {
    if (signal.aborted) return false;
    const event = r.event();
    const produced = await pipeline.process(event, waiter, undefined, "replay");
    if (produced === null) return false;
    summary.done++;
    if (!Array.isArray(produced)) failed([event.messageId], produced.failed.message);
    else if (produced.length === 0) summary.dropped++;
    else buffer.push(...produced);
    if (buffer.length >= opts.batchSize) await flush();
    else report();
    return !signal.aborted;
  });
  if (!signal.aborted) await flush();
  if (signal.aborted) summary.stopped = `stopped after ${summary.done} of ${summary.total} events`;
  report();
  return summary;
}
