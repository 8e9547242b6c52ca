import type { Logger } from "pino";
import type { ConnectionConfig } from "../config/schema.ts";
import type { StoredEvent } from "../events/schema.ts";
import type { ExecLogEntry, LogEntry } from "../functions/protocol.ts";
import type { ChainRunner } from "./chain.ts";
import type { Clock } from "./clock.ts";
import {
  type DeadLetter,
  type DeadLetterStore,
  type EventOrigin,
  originOf,
} from "./dead-letters/interface.ts";
import { ConnectionHealth } from "./health.ts";
import type { DeliveryFailure, DeliveryOutcome, Destination } from "./interface.ts";
import { afterFailure, duration, type RetryPolicy } from "./retry.ts";
import type { DeliveryTrace, TraceRecord } from "./trace/interface.ts";

/** An event to deliver and the stored event it came from. */
export interface Produced {
  event: StoredEvent;
  origin: EventOrigin;
}

/** How a long-running caller (a consumer, a replay) waits, and is stopped. */
export interface Waiter {
  readonly stopped: boolean;
  /** Waits `ms` (by the pipeline's clock); cut short when the caller stops. */
  sleep(ms: number): Promise<void>;
}

export interface PipelineOptions {
  connection: ConnectionConfig;
  destination: Destination;
  chain: ChainRunner;
  deadLetters: DeadLetterStore;
  trace: DeliveryTrace;
  policy: RetryPolicy;
  clock: Clock;
  logger: Logger;
  /** Events confirmed by the destination (for metrics). */
  onDelivered?: (connectionId: string, events: number) => void;
  /** Events that went to the dead letters. */
  onDeadLetter?: (connectionId: string, events: number) => void;
}

/** A user function that fails on this many attempts in a row is not tried again. */
export const FUNCTION_ATTEMPTS = 3;

/** What `send` made of a batch. */
export type SendResult =
  | { delivered: true }
  | { delivered: false; deadLetter?: DeadLetter; failure: DeliveryFailure }
  | { stopped: true };

/**
 * One connection's way out (SPEC 8): runs its functions over stored events, sends
 * batches to its destination with the retry policy, and sends what cannot be
 * delivered to the dead letters: at once when refused for good, or once the
 * connection has been failing longer than its retry window. Everything it does is
 * logged and traced per stored event for the inspector.
 */
export class ConnectionPipeline {
  constructor(private readonly opts: PipelineOptions) {}

  get connectionId(): string {
    return this.opts.connection.id;
  }

  /**
   * Runs the connection's functions over one stored event: what it produced (nothing
   * when dropped or dead-lettered), or null when `waiter` stopped first.
   * `health` is the connection's own (a replay passes none). A replay's event that
   * the functions keep failing is reported as `failed`, not dead-lettered: the
   * connection's own delivery of it is untouched.
   */
  async process(
    event: StoredEvent,
    waiter: Waiter,
    health?: ConnectionHealth,
    via?: "replay",
  ): Promise<Produced[] | { failed: DeliveryFailure } | null> {
    const { chain, connection, clock, logger, policy } = this.opts;
    const origin = originOf(event);
    let userFailures = 0;
    // A replay keeps its own streak: its failures are not the connection's state.
    const streak = health ?? new ConnectionHealth();
    for (let retries = 0; !waiter.stopped; retries++) {
      const outcome = await chain(connection, event, retries);
      if (waiter.stopped) return null;
      const now = clock.now();
      if (!("failed" in outcome)) this.reportFunctions(origin, outcome, retries, now);
      if ("events" in outcome) return outcome.events.map((e) => ({ event: e, origin }));
      const message =
        "retry" in outcome ? `function asked to retry: ${outcome.retry}` : outcome.failed;
      const failure: DeliveryFailure = { message };
      const permanent =
        "failed" in outcome && outcome.userCode && ++userFailures >= FUNCTION_ATTEMPTS;
      const since = permanent ? now : streak.retrying(now, message);
      const decision = permanent
        ? { giveUp: `failed on ${FUNCTION_ATTEMPTS} attempts in a row` }
        : afterFailure(policy, { attempt: retries + 1, failingSince: since, now });
      if ("giveUp" in decision) {
        if (!permanent) failure.message = `${message} (${decision.giveUp})`;
        if (via) {
          this.replayFailed([event], failure, retries + 1);
          return { failed: failure };
        }
        await this.deadLetter(
          [event],
          [origin],
          "functions",
          failure,
          retries + 1,
          now,
          !permanent,
        );
        streak.deadLettered(now, failure.message, !permanent);
        return [];
      }
      logger.info(
        { connectionId: connection.id, messageId: event.messageId, reason: message, retries },
        "functions will be run again",
      );
      await waiter.sleep(decision.retryInMs);
    }
    return null;
  }

  /**
   * Delivers a batch until the destination confirms it or it is dead-lettered (the
   * offset may then move past it), or until `waiter` stops (it may not).
   */
  async deliver(
    batch: Produced[],
    waiter: Waiter,
    health?: ConnectionHealth,
    via?: "replay",
  ): Promise<SendResult> {
    const { clock, logger, policy, connection } = this.opts;
    const events = batch.map((p) => p.event);
    const origins = batch.map((p) => p.origin);
    const streak = health ?? new ConnectionHealth();
    for (let attempt = 1; !waiter.stopped; attempt++) {
      const outcome = await this.attempt(events, origins, attempt, via);
      const now = clock.now();
      if (outcome.ok) {
        streak.succeeded(now);
        this.opts.onDelivered?.(connection.id, events.length);
        await this.deadLetterRejected(batch, outcome.rejected ?? [], attempt);
        return { delivered: true };
      }
      if (waiter.stopped) break; // cut short by shutdown: delivered again after the restart
      const { failure } = outcome;
      if (!outcome.transient) {
        const letter = via
          ? undefined
          : await this.deadLetter(events, origins, "destination", failure, attempt, now, false);
        if (via) this.replayFailed(events, failure, attempt);
        streak.deadLettered(now, failure.message, false);
        return { delivered: false, deadLetter: letter, failure };
      }
      const since = streak.retrying(now, failure.message);
      const decision = afterFailure(policy, {
        attempt,
        failingSince: since,
        now,
        retryAfterMs: outcome.retryAfterMs,
      });
      if ("giveUp" in decision) {
        const given = { ...failure, message: `${failure.message} (${decision.giveUp})` };
        const letter = via
          ? undefined
          : await this.deadLetter(events, origins, "destination", given, attempt, now, true);
        if (via) this.replayFailed(events, given, attempt);
        streak.deadLettered(now, given.message, true);
        return { delivered: false, deadLetter: letter, failure: given };
      }
      // The first failure of a streak is worth a warning; the retries after it are not.
      const level = attempt === 1 && since === now ? "warn" : "info";
      logger[level](
        {
          connectionId: connection.id,
          events: events.length,
          status: failure.status,
          reason: failure.message,
          attempt,
          retryInMs: decision.retryInMs,
          failingFor: duration(now - since),
          ...(via ? { via } : {}),
        },
        "delivery failed; will retry",
      );
      await waiter.sleep(decision.retryInMs);
    }
    return { stopped: true };
  }

  /**
   * Runs the functions once over a stored event (a redrive): what they produced, or
   * why they could not (`transient` when a later try may succeed).
   */
  async runFunctionsOnce(
    event: StoredEvent,
  ): Promise<{ produced: Produced[] } | { failure: DeliveryFailure; transient: boolean }> {
    const origin = originOf(event);
    const outcome = await this.opts.chain(this.opts.connection, event, 0);
    if ("failed" in outcome) {
      return { failure: { message: outcome.failed }, transient: !outcome.userCode };
    }
    this.reportFunctions(origin, outcome, 0, this.opts.clock.now());
    if ("retry" in outcome) {
      return { failure: { message: `function asked to retry: ${outcome.retry}` }, transient: true };
    }
    return { produced: outcome.events.map((e) => ({ event: e, origin })) };
  }

  /** Events of a confirmed batch that the destination refused one by one: a letter each. */
  async deadLetterRejected(
    batch: Produced[],
    rejected: { event: StoredEvent; failure: DeliveryFailure }[],
    attempt: number,
  ): Promise<void> {
    const now = this.opts.clock.now();
    for (const r of rejected) {
      const origin = batch.find((p) => p.event === r.event)?.origin ?? originOf(r.event);
      await this.deadLetter([r.event], [origin], "destination", r.failure, attempt, now, false);
    }
  }

  /** One attempt at a batch, traced per stored event; never throws. */
  async attempt(
    events: StoredEvent[],
    origins: EventOrigin[],
    attempt: number,
    via?: "replay" | "redrive",
  ): Promise<DeliveryOutcome> {
    const { destination, connection, clock } = this.opts;
    const deliveryId = Bun.randomUUIDv7();
    let outcome: DeliveryOutcome;
    try {
      outcome = await destination.deliver(events, { connectionId: connection.id, id: deliveryId });
    } catch (err) {
      // A destination bug must not stop the connection for good: treat it as passing.
      outcome = { ok: false, transient: true, failure: { message: String(err) } };
    }
    const at = clock.now();
    const entry = outcome.ok
      ? { ok: true, status: outcome.status }
      : { ok: false, status: outcome.failure.status, error: outcome.failure.message };
    this.trace(origins, at, {
      kind: "attempt",
      attempt,
      deliveryId,
      ...entry,
      ...(via ? { via } : {}),
    });
    return outcome;
  }

  /**
   * Stores a dead letter (durably, before the caller moves on) and says so in one
   * `error` line with the connection, the messageIds, the status and the answer.
   */
  async deadLetter(
    events: StoredEvent[],
    origins: EventOrigin[],
    stage: DeadLetter["stage"],
    failure: DeliveryFailure,
    attempts: number,
    at: number,
    transient: boolean,
  ): Promise<DeadLetter> {
    const { connection, logger, deadLetters } = this.opts;
    const letter = await deadLetters.add({
      connectionId: connection.id,
      stage,
      events,
      origins,
      failure,
      attempts,
      at,
    });
    logger.error(
      {
        connectionId: connection.id,
        messageIds: events.map((e) => e.messageId),
        status: failure.status,
        answer: failure.answer,
        reason: failure.message,
        attempts,
        deadLetterId: letter.id,
        stage,
      },
      transient
        ? "delivery gave up after its retry window; batch dead-lettered"
        : stage === "functions"
          ? "functions failed on every attempt; event dead-lettered"
          : "destination refused the batch; dead-lettered",
    );
    this.trace(origins, at, {
      kind: "dead-letter",
      deadLetterId: letter.id,
      error: failure.message,
    });
    this.opts.onDeadLetter?.(connection.id, events.length);
    return letter;
  }

  /** Records one entry for each distinct stored event among `origins`. */
  trace(origins: EventOrigin[], at: number, entry: TraceRecord["entry"]): void {
    const seen = new Set<string>();
    const records: TraceRecord[] = [];
    for (const o of origins) {
      const key = `${o.sourceId}\u0000${o.messageId}`;
      if (seen.has(key)) continue;
      seen.add(key);
      records.push({ connectionId: this.opts.connection.id, ...o, at, entry });
    }
    this.opts.trace.record(records);
  }

  /**
   * Function errors and `ctx.log` lines of a delivery-time run go to the server's log
   * (a log line's level is its own; an error is `error`), with the connection and the
   * messageId, and to the trace for the inspector.
   */
  private reportFunctions(
    origin: EventOrigin,
    ran: { execLog: ExecLogEntry[]; logs: LogEntry[]; events?: StoredEvent[] },
    retries: number,
    at: number,
  ): void {
    const { execLog, logs } = ran;
    if (execLog.length === 0 && logs.length === 0) return;
    const { logger, connection } = this.opts;
    const where = { connectionId: connection.id, messageId: origin.messageId };
    for (const l of logs) {
      const text = [l.message, ...l.args.map(argText)].join(" ");
      logger[l.level](
        { ...where, functionId: l.functionId, functionLog: true },
        `function ${l.functionId}: ${text.slice(0, 2000)}`,
      );
    }
    for (const e of execLog) {
      if (!e.error || e.error.name === "RetryError") continue;
      logger.error(
        { ...where, functionId: e.functionId, error: e.error },
        `function ${e.functionId} failed during delivery: ${e.error.name}: ${e.error.message}`,
      );
    }
    const output = ran.events?.length ?? 0;
    this.trace([origin], at, { kind: "functions", retries, execLog, logs, output });
  }

  private replayFailed(events: StoredEvent[], failure: DeliveryFailure, attempts: number): void {
    this.opts.logger.error(
      {
        connectionId: this.opts.connection.id,
        messageIds: events.map((e) => e.messageId),
        status: failure.status,
        answer: failure.answer,
        reason: failure.message,
        attempts,
        via: "replay",
      },
      "replay could not send events (they stay in the log; the connection's own delivery is untouched)",
    );
  }
}

/** A logged argument as console.log would print it. */
function argText(arg: unknown): string {
  if (typeof arg === "string") return arg;
  try {
    return JSON.stringify(arg) ?? String(arg);
  } catch {
    return String(arg);
  }
}
