import type { Logger } from "pino";
import type { OffsetStore } from "../delivery/interface.ts";
import { encodeFrames } from "./file/record.ts";
import { applyFileRetention } from "./file/retention.ts";
import { comparePositions, type EventLog, type LogPosition, type LogRecord } from "./interface.ts";
import type {
  AppendRecord,
  Backlog,
  ConsumerOptions,
  LogConsumer,
  LogCursor,
  LogReader,
  LogRetentionPolicy,
  LogStream,
  ReaderOptions,
  RetentionResult,
  StartAt,
  StreamRecord,
} from "./stream.ts";
import { BacklogCountingError } from "./stream.ts";

/**
 * The seam of `log/stream.ts` over the embedded file log. A record's cursor is the
 * point just after it, `<segment>:<offset>` (where the next record starts): the same
 * text as the positions users see (the inspector, `sluice replay --from/--to`), so a
 * position is a cursor to start after. (`<segment>:<offset>:<next>`, the form of the
 * first version, is still read.)
 * commits go to the `OffsetStore` where connection offsets already live, keyed by the
 * consumer's name, so a consumer named after a connection shares that connection's
 * offset. sourceId, type and receivedAt come from the record's frame (v3); records
 * written before it are parsed for them.
 *
 * Backlogs are counted, not scanned per call: each closed segment's records per source
 * are counted once (segments never change once closed), appends add to the counts,
 * commits take from them. The first count of a backlog reads the rest of its first
 * segment and the segment being written, in slices that yield to the event loop.
 */
export class FileLogStream implements LogStream {
  private readonly consumers = new Set<FileLogConsumer>();
  /** Per consumer name: its backlog counter (kept while it is closed, e.g. a paused connection). */
  private readonly counters = new Map<string, BacklogCounter>();
  /** Records per source of each closed segment (counted once; a count in progress is shared). */
  private readonly segmentCounts = new Map<number, Promise<Map<string, number>>>();

  /** Takes ownership of `log`: closing the stream closes it. */
  constructor(
    private readonly log: EventLog,
    private readonly offsets: OffsetStore,
    private readonly logger?: Logger,
  ) {}

  /** The file log underneath (its own admin: segments, retention, metrics). */
  get fileLog(): EventLog {
    return this.log;
  }

  async append(records: readonly AppendRecord[]): Promise<LogCursor[]> {
    if (records.length === 0) return [];
    const { end, sizes } = await this.write(records);
    const cursors: LogCursor[] = new Array(sizes.length);
    // Each record's cursor is the point after it: `<segment>:<offset>`.
    const prefix = `${end.segment}:`;
    let at = end.offset;
    for (let i = sizes.length - 1; i >= 0; i--) {
      cursors[i] = prefix + at;
      at -= sizes[i]!;
    }
    return cursors;
  }

  async appendLast(records: readonly AppendRecord[]): Promise<LogCursor> {
    if (records.length === 0) throw new Error("appendLast: no records");
    const { end } = await this.write(records);
    return `${end.segment}:${end.offset}`;
  }

  /** Frames and writes one call's records: they land together in one segment, ending at `end`. */
  private async write(records: readonly AppendRecord[]) {
    const framed = encodeFrames(records);
    const end = await this.log.appendFramed(framed);
    const { sizes } = framed;
    if (this.counters.size > 0) {
      // Their places follow from their framed sizes.
      let at = end.offset;
      for (let i = sizes.length - 1; i >= 0; i--) at -= sizes[i]!;
      const start = { segment: end.segment, offset: at };
      for (const counter of this.counters.values()) counter.appended(start, records);
    }
    return { end, sizes };
  }

  healthy(): boolean {
    return this.log.healthy();
  }

  async consumer(name: string, opts: ConsumerOptions): Promise<LogConsumer> {
    let position = this.offsets.get(name);
    if (!position) {
      position = this.startPosition(opts.start);
      // The consumer exists from now on: a "now" consumer reopened later still starts here.
      this.offsets.set(name, position);
    } else if (comparePositions(position, this.log.end()) > 0) {
      // The log was cut back below this offset (a corrupt tail truncated at start): go
      // on from its end, or records appended there now would be skipped.
      this.logger?.warn(
        { consumer: name, offset: position, logEnd: this.log.end() },
        "connection offset is past the end of the log; continuing from the end",
      );
      position = this.log.end();
      this.offsets.set(name, position);
      this.counters.delete(name);
    }
    const counter = this.counterOf(name, opts.sourceId, position);
    const consumer = new FileLogConsumer(this, name, position, opts.sourceId, counter);
    this.consumers.add(consumer);
    consumer.onClose = () => this.consumers.delete(consumer);
    return consumer;
  }

  async reader(opts: ReaderOptions): Promise<LogReader> {
    return new FileLogReader(this, this.startPosition(opts.start), opts.sourceId);
  }

  /**
   * Never waits for a count: a backlog not counted yet (the first ask after start,
   * perhaps tens of GB behind) starts being counted in the background, and this rejects
   * with `BacklogCountingError` until it is. So neither start-up nor a scrape waits
   * for one. (A consumer's own `backlog()` waits.)
   */
  async backlog(name: string, sourceId?: string): Promise<Backlog | undefined> {
    const committed = this.offsets.get(name);
    if (!committed) return undefined;
    const counter = this.counterOf(name, sourceId, committed);
    const backlog = await counter.backlog(false);
    if (!backlog) throw new BacklogCountingError(name, counter.whenCounted());
    return backlog;
  }

  /**
   * Whether connection `name` began reading after the record at `ref` (its position,
   * `<segment>:<offset>`): `before_start` when the record lies before the connection's
   * first offset (made with start `now`, or after a later cursor), so it never received
   * it; else `pending`. Undefined when the connection has no offset yet, its start was
   * recorded before starts were kept, or `ref` is not a position. (With one instance
   * the delivery trace tells delivered from pending; this only names what it never had.)
   */
  startState(name: string, ref: string): "before_start" | "pending" | undefined {
    const at = parseCursor(ref);
    const start = this.offsets.startOf(name);
    if (!at || !start) return undefined;
    return comparePositions(at, start) < 0 ? "before_start" : "pending";
  }

  async trimBefore(cursor: LogCursor): Promise<void> {
    const position = decodeCursor(cursor);
    const current = this.log.end().segment;
    for (const { segment } of this.log.segments()) {
      if (segment >= position.segment || segment >= current) break;
      this.log.deleteSegment(segment);
    }
  }

  /**
   * Deletes whole segments (`log/file/retention.ts`): the oldest ones last written more
   * than `maxAgeMs` ago, or while the log is over `maxBytes`, up to the first one a
   * named consumer's committed offset or a reader's cursor is in (or before).
   */
  async retain(policy: LogRetentionPolicy): Promise<RetentionResult> {
    const readers: { id: string; position: LogPosition }[] = [];
    for (const name of policy.consumers) {
      const position = this.offsets.get(name);
      if (position) readers.push({ id: name, position });
    }
    for (const r of policy.readers ?? []) {
      const position = parseCursor(r.cursor);
      if (position) readers.push({ id: r.id, position });
    }
    let holding: string[] = [];
    const { bytes } = applyFileRetention({
      log: this.log,
      maxAgeMs: policy.maxAgeMs,
      maxBytes: policy.maxBytes,
      readers,
      logger: this.logger,
      now: policy.now,
      onBehind: (ids) => {
        holding = ids;
      },
    });
    return { bytes, holding };
  }

  async close(): Promise<void> {
    for (const c of [...this.consumers]) await c.close();
    await this.log.close();
  }

  // ---- for this file's consumers and readers ----

  /** Where `start` points in this log. */
  startPosition(start: StartAt): LogPosition {
    if (start === "oldest") return this.log.start();
    if (start === "now") return this.log.end();
    const after = parseCursor(start.after);
    // Past the end: the log was cut back (a corrupt tail); read it all again.
    if (!after || comparePositions(after, this.log.end()) > 0) return this.log.start();
    return after;
  }

  read(from: LogPosition, max: number): LogRecord[] {
    return this.log.read(from, max);
  }

  end(): LogPosition {
    return this.log.end();
  }

  onAppend(listener: () => void): () => void {
    return this.log.onAppend(listener);
  }

  commitOffset(name: string, position: LogPosition): void {
    this.offsets.set(name, position);
  }

  /**
   * Records of `sourceId` (all with undefined) in `[from, to)`: the rest of `from`'s
   * segment read, each closed segment after it from its cached counts (read once), the
   * segment being written read up to `to`. Reads SCAN_BATCH records at a time and
   * yields to the event loop between them, so ingest and HTTP go on while a large
   * backlog (a destination down for a day) is counted.
   */
  async count(from: LogPosition, to: LogPosition, sourceId: string | undefined): Promise<number> {
    // Listed once per count (a readdir and a stat per segment).
    const segments = this.log.segments().map((s) => s.segment);
    let total = 0;
    let at = from;
    while (comparePositions(at, to) < 0) {
      if (at.segment < to.segment) {
        const next = segments.find((s) => s > at.segment);
        if (at.offset === 0 && segments.includes(at.segment)) {
          const counts = await this.closedSegmentCounts(at.segment, segments);
          total += sourceId === undefined ? sum(counts) : (counts.get(sourceId) ?? 0);
        } else if (segments.includes(at.segment)) {
          // Mid-segment (a committed offset): the rest of this segment only.
          total += await this.countIn(at, sourceId);
        }
        // The next segment from its start (deleted ones meanwhile count nothing).
        if (next === undefined || next > to.segment) break;
        at = { segment: next, offset: 0 };
        await yieldToEventLoop();
        continue;
      }
      // The segment being written, up to `to`.
      const slice = this.countSlice(at, to, sourceId);
      total += slice.records;
      if (!slice.next) break;
      at = slice.next;
      await yieldToEventLoop();
    }
    return total;
  }

  /**
   * `count()` at once, when `[from, to)` is small (within one segment, at most
   * SMALL_COUNT_BYTES): a backlog of a few thousand records is known at the first ask.
   */
  countSmall(from: LogPosition, to: LogPosition, sourceId: string | undefined): number | undefined {
    if (from.segment !== to.segment || to.offset - from.offset > SMALL_COUNT_BYTES)
      return undefined;
    let total = 0;
    let at: LogPosition | undefined = from;
    while (at && comparePositions(at, to) < 0) {
      const slice = this.countSlice(at, to, sourceId);
      total += slice.records;
      at = slice.next;
    }
    return total;
  }

  /** Up to SCAN_BATCH records from `at` before `to`: how many are the source's, and where to go on (none: done). */
  private countSlice(
    at: LogPosition,
    to: LogPosition,
    sourceId: string | undefined,
  ): { records: number; next: LogPosition | undefined } {
    let records = 0;
    let next: LogPosition | undefined;
    for (const r of this.log.read(at, SCAN_BATCH)) {
      if (comparePositions(r.position, to) >= 0) return { records, next: undefined };
      if (sourceId === undefined || sourceOf(r) === sourceId) records++;
      next = r.next;
    }
    return { records, next };
  }

  /** Records of `sourceId` (all with undefined) from `from` to the end of its segment. */
  private async countIn(from: LogPosition, sourceId: string | undefined): Promise<number> {
    let n = 0;
    await this.scanSegment(from, (r) => {
      if (sourceId === undefined || sourceOf(r) === sourceId) n++;
    });
    return n;
  }

  /** Calls `each` for every record from `from` to the end of its segment, yielding between batches. */
  private async scanSegment(from: LogPosition, each: (r: LogRecord) => void): Promise<void> {
    const { segment } = from;
    let at = from;
    for (;;) {
      const records = this.log.read(at, SCAN_BATCH);
      let last: LogRecord | undefined;
      for (const r of records) {
        if (r.position.segment !== segment) return;
        each(r);
        last = r;
      }
      if (!last || records.length < SCAN_BATCH) return;
      at = last.next;
      await yieldToEventLoop();
    }
  }

  /**
   * Records per source of a closed segment, counted once (a count in progress is shared).
   * `segments`: the log's segments when the count began (a deleted one counts nothing).
   */
  private closedSegmentCounts(segment: number, segments: number[]): Promise<Map<string, number>> {
    const cached = this.segmentCounts.get(segment);
    if (cached) return cached;
    const counting = (async () => {
      const counts = new Map<string, number>();
      await this.scanSegment({ segment, offset: 0 }, (r) => {
        const id = sourceOf(r);
        counts.set(id, (counts.get(id) ?? 0) + 1);
      });
      return counts;
    })();
    // Segments gone (retention) are forgotten.
    for (const s of this.segmentCounts.keys())
      if (!segments.includes(s)) this.segmentCounts.delete(s);
    this.segmentCounts.set(segment, counting);
    counting.catch(() => this.segmentCounts.delete(segment));
    return counting;
  }

  private counterOf(name: string, sourceId: string | undefined, committed: LogPosition) {
    let counter = this.counters.get(name);
    if (!counter || counter.sourceId !== sourceId) {
      counter = new BacklogCounter(this, sourceId, committed);
      this.counters.set(name, counter);
    }
    return counter;
  }
}

/** Records are scanned this many at a time when a filter skips most of them or a backlog is counted. */
const SCAN_BATCH = 1000;
/** A backlog within this many bytes of one segment is counted at once, not in the background. */
const SMALL_COUNT_BYTES = 1024 * 1024;

/**
 * A consumer's backlog: records of its source from its committed position to the end of
 * the log. Counted once (lazily, in slices: see `FileLogStream.count`), then kept by
 * appends and commits; appends and commits during the count are tallied beside it.
 */
class BacklogCounter {
  /** Uncommitted records counted up to `countedTo` (undefined: not counted yet). */
  private pending: number | undefined;
  private countedTo: LogPosition | undefined;
  /** The count in progress: from where, to where, and what happened meanwhile. */
  private counting:
    | {
        done: Promise<void>;
        to: LogPosition;
        /** Records of the source appended at or after `to` meanwhile. */
        appended: number;
        /** Records committed meanwhile; undefined: a commit did not say (count again). */
        committed: number | undefined;
      }
    | undefined;
  /** Why the last count failed, until someone is told (the next ask counts again). */
  private failed: unknown;
  /** The oldest uncommitted record's time, found for `committed` (cached per commit). */
  private oldest: { at: LogPosition; receivedAt: number | undefined } | undefined;

  constructor(
    private readonly stream: FileLogStream,
    readonly sourceId: string | undefined,
    private committed: LogPosition,
  ) {}

  /** A call's records were appended at `start` on. */
  appended(start: LogPosition, records: readonly AppendRecord[]): void {
    const counting = this.counting;
    const to = counting?.to ?? this.countedTo;
    if ((this.pending === undefined && !counting) || !to) return;
    // Counted already when the count read past them.
    if (comparePositions(start, to) < 0) return;
    const { sourceId } = this;
    let n = 0;
    if (sourceId === undefined) n = records.length;
    else for (const r of records) if (r.sourceId === sourceId) n++;
    if (counting) counting.appended += n;
    else if (this.pending !== undefined) this.pending += n;
  }

  /** The committed position moved from where it was to `to`, past `records` of the source. */
  committedTo(to: LogPosition, records: number | undefined): void {
    if (comparePositions(to, this.committed) === 0) return;
    const counting = this.counting;
    if (counting) {
      counting.committed =
        records === undefined || counting.committed === undefined
          ? undefined
          : counting.committed + records;
    } else if (records === undefined || this.pending === undefined) this.pending = undefined;
    else this.pending = Math.max(0, this.pending - records);
    this.committed = to;
    this.oldest = undefined;
  }

  /** Resolves when the count in progress ends (at once when none is); never rejects. */
  whenCounted(): Promise<void> {
    return this.counting?.done ?? Promise.resolve();
  }

  /** Sets what the oldest uncommitted record is, when a consumer read it. */
  sawOldest(receivedAt: number | undefined): void {
    this.oldest = { at: this.committed, receivedAt };
  }

  /**
   * Starts the count when it is not known (in the background, unless it is small) and
   * resolves once it is known; with `wait: false` resolves at once, with undefined
   * while it is being counted.
   */
  async backlog(wait = true): Promise<Backlog | undefined> {
    while (this.pending === undefined) {
      const failed = this.failed;
      if (failed !== undefined) {
        this.failed = undefined;
        throw failed;
      }
      if (!this.counting) {
        const end = this.stream.end();
        const small = this.stream.countSmall(this.committed, end, this.sourceId);
        if (small !== undefined) {
          this.pending = small;
          this.countedTo = end;
          break;
        }
      }
      this.counting ??= this.startCount();
      if (!wait) return undefined;
      await this.counting.done;
    }
    if (this.pending === 0) return { records: 0 };
    if (!this.oldest || comparePositions(this.oldest.at, this.committed) !== 0) {
      const first = new FileLogReader(this.stream, this.committed, this.sourceId).take(1)[0];
      this.oldest = { at: this.committed, receivedAt: first?.receivedAt };
    }
    const { receivedAt } = this.oldest;
    return receivedAt === undefined
      ? { records: this.pending }
      : { records: this.pending, oldestAt: receivedAt };
  }

  private startCount(): NonNullable<BacklogCounter["counting"]> {
    const from = this.committed;
    const to = this.stream.end();
    const counting: NonNullable<BacklogCounter["counting"]> = {
      to,
      appended: 0,
      committed: 0,
      done: this.stream
        .count(from, to, this.sourceId)
        .then(
          (n) => {
            // A commit that did not say how many records it passed: count again from it.
            if (counting.committed !== undefined) {
              this.pending = Math.max(0, n + counting.appended - counting.committed);
              this.countedTo = to;
            }
          },
          (err: unknown) => {
            this.failed = err ?? new Error("backlog count failed");
          },
        )
        .finally(() => {
          if (this.counting === counting) this.counting = undefined;
        }),
    };
    return counting;
  }
}

/** Reads from a position kept in memory, filtering by source from the frames. */
class FileLogReader implements LogReader {
  protected closed = false;
  private wake?: () => void;

  constructor(
    protected readonly stream: FileLogStream,
    /** Where the next read starts. */
    public position: LogPosition,
    protected readonly sourceId: string | undefined,
  ) {}

  async read(max: number, waitMs = 0): Promise<StreamRecord[]> {
    if (max < 1) return [];
    const deadline = Date.now() + waitMs;
    for (;;) {
      const batch = this.take(max);
      const left = deadline - Date.now();
      if (batch.length > 0 || left <= 0 || this.closed) return batch;
      await this.appended(left);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
  }

  /** Up to `max` records of the source from `position` on, moving it past what was looked at. */
  take(max: number): StreamRecord[] {
    const out: StreamRecord[] = [];
    while (out.length < max) {
      const want = this.sourceId ? SCAN_BATCH : max - out.length;
      const records = this.stream.read(this.position, want);
      if (records.length === 0) break;
      for (const r of records) {
        this.position = r.next;
        if (this.sourceId === undefined) out.push(frameOf(r));
        else {
          // A v3 frame says its source: only this source's records are decoded.
          const source = r.sourceId ?? frameOf(r).sourceId;
          if (source === this.sourceId) out.push(frameOf(r));
        }
        if (out.length === max) break;
      }
    }
    return out;
  }

  /** Resolves on the next durable append, on close, or after `ms`. */
  private appended(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unsubscribe();
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      const unsubscribe = this.stream.onAppend(done);
      this.wake = done;
    });
  }
}

class FileLogConsumer extends FileLogReader implements LogConsumer {
  onClose?: () => void;
  /** Records read and not committed: where each ends, and when it was received. */
  private unacked: { next: LogPosition; receivedAt?: number }[] = [];
  private committed: LogPosition;

  constructor(
    stream: FileLogStream,
    readonly name: string,
    position: LogPosition,
    sourceId: string | undefined,
    private readonly counter: BacklogCounter,
  ) {
    super(stream, position, sourceId);
    this.committed = position;
  }

  override take(max: number): StreamRecord[] {
    const out = super.take(max);
    for (const r of out) {
      this.unacked.push({ next: decodeCursor(r.cursor), receivedAt: r.receivedAt });
    }
    if (this.unacked.length > 0 && this.unacked.length === out.length) {
      this.counter.sawOldest(this.unacked[0]!.receivedAt);
    }
    // Nothing of its own in flight: the records skipped (other sources) are done for it,
    // so its offset moves past them and retention is not held back by a quiet source.
    if (this.unacked.length === 0 && comparePositions(this.position, this.committed) > 0) {
      this.setCommitted(this.position, 0);
    }
    return out;
  }

  async commit(cursor: LogCursor): Promise<void> {
    const next = decodeCursor(cursor);
    let done = 0;
    while (done < this.unacked.length && comparePositions(this.unacked[done]!.next, next) <= 0) {
      done++;
    }
    const known = done > 0 && comparePositions(this.unacked[done - 1]!.next, next) === 0;
    this.unacked = this.unacked.slice(done);
    // The last record read: what was skipped after it is done too.
    const to = known && this.unacked.length === 0 ? this.position : next;
    this.setCommitted(to, known ? done : undefined);
    if (this.unacked.length > 0) this.counter.sawOldest(this.unacked[0]!.receivedAt);
  }

  async lag(): Promise<number> {
    return (await this.backlog()).records;
  }

  async backlog(): Promise<Backlog> {
    return (await this.counter.backlog())!;
  }

  override async close(): Promise<void> {
    await super.close();
    this.onClose?.();
  }

  private setCommitted(to: LogPosition, records: number | undefined): void {
    this.committed = to;
    this.stream.commitOffset(this.name, to);
    this.counter.committedTo(to, records);
  }
}

const decoder = new TextDecoder();

/** A record as the stream hands it out: sourceId, type and receivedAt from its frame, or its JSON. */
function frameOf(r: LogRecord): StreamRecord {
  const cursor = encodeCursor(r.next.segment, r.next.offset);
  if (r.sourceId !== undefined) {
    return {
      cursor,
      sourceId: r.sourceId,
      type: r.type ?? "",
      ...(r.receivedAt === undefined ? {} : { receivedAt: r.receivedAt }),
      payload: r.payload,
    };
  }
  // Written before frames carried them (v1, v2).
  let event: { sourceId?: unknown; type?: unknown; receivedAt?: unknown } = {};
  try {
    event = JSON.parse(decoder.decode(r.payload));
  } catch {
    // Not JSON: still delivered, with empty sourceId and type.
  }
  const receivedAt = typeof event.receivedAt === "string" ? Date.parse(event.receivedAt) : NaN;
  return {
    cursor,
    sourceId: typeof event.sourceId === "string" ? event.sourceId : "",
    type: typeof event.type === "string" ? event.type : "",
    ...(Number.isFinite(receivedAt) ? { receivedAt } : {}),
    payload: r.payload,
  };
}

/** A record's source: from its frame (v3), else from its JSON. */
function sourceOf(r: LogRecord): string {
  return r.sourceId ?? frameOf(r).sourceId;
}

/** Lets timers, I/O and requests run between two slices of a long count. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function sum(counts: Map<string, number>): number {
  let n = 0;
  for (const c of counts.values()) n += c;
  return n;
}

function encodeCursor(segment: number, next: number): LogCursor {
  return `${segment}:${next}`;
}

/** The point a cursor names: `<segment>:<offset>`, or the first version's `<segment>:<offset>:<next>`. */
function parseCursor(cursor: LogCursor): LogPosition | undefined {
  const m = /^(\d{1,12}):(\d{1,15})(?::(\d{1,15}))?$/.exec(cursor);
  if (!m) return undefined;
  return { segment: Number(m[1]), offset: Number(m[3] ?? m[2]) };
}

function decodeCursor(cursor: LogCursor): LogPosition {
  const parsed = parseCursor(cursor);
  if (!parsed) throw new Error(`not a file log cursor: ${JSON.stringify(cursor)}`);
  return parsed;
}

/**
 * The file log position just after the record at `cursor` (retention and the file
 * log's own tools; nothing else may look inside a cursor).
 */
export function positionAfter(cursor: LogCursor): LogPosition | undefined {
  return parseCursor(cursor);
}
