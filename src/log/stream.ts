/**
 * The event log seen through positions that only its backend can read (issue 14): an
 * appender, durable named consumers with an opaque cursor, and retention as an admin
 * operation. The embedded file log (`log/file-stream.ts`) and NATS JetStream
 * (`log/nats/`) both fill it and pass the same contract suite
 * (`test/contract/event-log.ts`). Callers never see a segment, an offset or a
 * stream sequence: they hold cursors and hand them back.
 */

/** A record's place in the log. Opaque: compare or parse it only in the backend that made it. */
export type LogCursor = string;

/** Where a durable consumer starts the first time it is opened (afterwards: after its last commit). */
export type StartAt = "oldest" | "now" | { after: LogCursor };

/** One record to append. `sourceId` and `type` travel beside the payload, so readers filter without parsing it. */
export interface AppendRecord {
  sourceId: string;
  /** The event type (`track`, `identify`, …). */
  type: string;
  /** The stored event: its JSON text (encoded once, straight into the backend's frame) or its bytes. */
  payload: Uint8Array | string;
  /** When given, a backend with a duplicate window of its own stores the record once per `sourceId:messageId`. */
  messageId?: string;
  /** When the event was received (ms since the epoch), for readers that filter by time. */
  receivedAt?: number;
}

/** One record as a consumer reads it. */
export interface StreamRecord {
  cursor: LogCursor;
  sourceId: string;
  type: string;
  /** When the log received it (ms since the epoch), where the backend knows it. */
  receivedAt?: number;
  payload: Uint8Array;
}

export interface LogAppender {
  /**
   * Appends records in order and resolves with each one's cursor, only once every one
   * is durable (an acknowledged event must survive a crash). Records of one call keep
   * their order; concurrent calls may interleave.
   */
  append(records: readonly AppendRecord[]): Promise<LogCursor[]>;
  /**
   * `append`, resolving with the cursor of the last record only (`records` must not be
   * empty): ingest keeps no other, and a cursor string per record of a batch cost the
   * file log 0.1–0.4 µs an event (bench/RESULTS.md, "Fifth session: batch path").
   */
  appendLast(records: readonly AppendRecord[]): Promise<LogCursor>;
  /** Whether appends can succeed now (false while the backend is unreachable or broken). */
  healthy(): boolean;
}

/** What a consumer has not committed yet. */
export interface Backlog {
  /** Records not yet committed (read or not). */
  records: number;
  /** When the oldest of them was received (ms), where the backend knows it; undefined when none. */
  oldestAt?: number;
}

/** A backlog not counted yet: it is being counted in the background; ask again later. */
export class BacklogCountingError extends Error {
  constructor(
    readonly consumer: string,
    /** Resolves when the count ends (never rejects): the time to ask again. */
    readonly counted: Promise<void>,
  ) {
    super(`the backlog of ${consumer} is being counted`);
    this.name = "BacklogCountingError";
  }
}

export interface ReaderOptions {
  /** `{ after }` a cursor this log no longer holds or never made past its end (the log was cut back) starts at the oldest. */
  start: StartAt;
  /** Only records of this source. */
  sourceId?: string;
}

/**
 * A reader whose place lives in memory only: start-up replay, the inspector, replays of
 * a time range, `sluice log tail`. It commits nothing and holds nothing back.
 */
export interface LogReader {
  /** Up to `max` records after the last one read; waits up to `waitMs` for the first. */
  read(max: number, waitMs?: number): Promise<StreamRecord[]>;
  close(): Promise<void>;
}

export interface ConsumerOptions {
  /** Where to start when no consumer of this name exists yet; ignored afterwards. */
  start: StartAt;
  /**
   * Only records of this source. The file log reads the source given at each open from
   * the consumer's place on; NATS refuses a source other than the one its consumer was
   * made with (LogConsumerConflictError).
   */
  sourceId?: string;
}

/**
 * A durable consumer exists in the log with a config this open cannot use without
 * dropping records (NATS: a different subject filter). The message names the consumer
 * and what to do; it holds no secret.
 */
export class LogConsumerConflictError extends Error {
  constructor(
    readonly consumer: string,
    message: string,
  ) {
    super(message);
    this.name = "LogConsumerConflictError";
  }
}

/**
 * A durable named consumer. Records come in log order; `commit` marks everything up to
 * a cursor done, and the next consumer opened under the same name resumes right after
 * the last committed record (at-least-once: what was read but not committed comes again).
 */
export interface LogConsumer {
  readonly name: string;
  /** Up to `max` records after the last one read; waits up to `waitMs` for the first (backends may round it up). */
  read(max: number, waitMs?: number): Promise<StreamRecord[]>;
  /** Marks every record read up to and including `cursor` done, durably. */
  commit(cursor: LogCursor): Promise<void>;
  /** Records not yet committed (read or not). */
  lag(): Promise<number>;
  /** Records not yet committed and when the oldest was received: from counters, not a scan per call. */
  backlog(): Promise<Backlog>;
  /** Stops reading; records read but not committed become readable again. */
  close(): Promise<void>;
}

/** What one retention pass may delete (SPEC 5: by age and total size, only what every reader consumed). */
export interface LogRetentionPolicy {
  /** Records older than this may go. */
  maxAgeMs: number;
  /** The oldest records may go while the log holds more than this. */
  maxBytes: number;
  /**
   * The durable consumers (by name: the connections) whose uncommitted records are never
   * deleted. A name with no consumer in the log holds nothing; consumers not named hold
   * nothing either (a removed connection's).
   */
  consumers: readonly string[];
  /** Other readers that hold records after a cursor they read (the dedup checkpoint). */
  readers?: readonly { id: string; cursor: LogCursor }[];
  /** Now, in ms since the epoch (tests). */
  now?: number;
}

/** What a retention pass did. */
export interface RetentionResult {
  /** Records deleted, where the backend counts them (NATS; the file log deletes segments unread). */
  records?: number;
  /** Bytes deleted, where the backend knows them (the file log). */
  bytes?: number;
  /**
   * The consumers and readers (names, ids) that held back records the policy would
   * have deleted: empty when none did. Reported, never skipped.
   */
  holding: string[];
}

/** Retention as an explicit admin operation: policies (age, size) decide outside the backend. */
export interface LogRetention {
  /**
   * Deletes records before `cursor` (never it or later). A backend may keep more than
   * asked (the file log deletes whole segments only). Consumers behind the cut resume
   * at the oldest retained record.
   */
  trimBefore(cursor: LogCursor): Promise<void>;
  /**
   * One retention pass: deletes the oldest records the policy allows (older than
   * `maxAgeMs`, or while the log is over `maxBytes`), but never one a named consumer has
   * not committed or a reader has not read; those that hold records back are in
   * `holding`. Safe to run from several instances at once (each deletes only what every
   * consumer had committed when it looked; commits never move back). A backend may keep
   * more than the policy allows (the file log deletes whole segments; NATS cuts by size
   * at the average stored size of a message).
   */
  retain(policy: LogRetentionPolicy): Promise<RetentionResult>;
}

/** A whole log backend: what the composition root builds from `log.backend`. */
export interface LogStream extends LogAppender, LogRetention {
  /** Opens the durable consumer `name`, creating it at `opts.start` if it does not exist. */
  consumer(name: string, opts: ConsumerOptions): Promise<LogConsumer>;
  /** A reader of its own (see `LogReader`). */
  reader(opts: ReaderOptions): Promise<LogReader>;
  /**
   * The backlog of consumer `name` (of `sourceId`'s records), open or not, without
   * opening it: undefined when no consumer of that name exists. Never waits for a long
   * count: a backend that must count first (the file log, once after start) rejects
   * with `BacklogCountingError` until it has.
   */
  backlog(name: string, sourceId?: string): Promise<Backlog | undefined>;
  /** Waits for pending appends, then releases files or connections. */
  close(): Promise<void>;
}
