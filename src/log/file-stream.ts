import type { OffsetStore } from "../delivery/interface.ts";
import { encodeRecords } from "./file/record.ts";
import type { EventLog, LogPosition, LogRecord } from "./interface.ts";
import type {
  AppendRecord,
  ConsumerOptions,
  LogConsumer,
  LogCursor,
  LogStream,
  StreamRecord,
} from "./stream.ts";

/**
 * The seam of `log/stream.ts` over the embedded file log. A cursor is
 * `<segment>:<offset>:<next>` (a record's place and where the one after it starts);
 * commits go to the `OffsetStore` where connection offsets already live, keyed by the
 * consumer's name, so a consumer named after a connection shares that connection's
 * offset. The record frame does not carry sourceId and type yet: they are read from
 * the stored event's JSON (issue 14 moves them into the frame).
 */
export class FileLogStream implements LogStream {
  private readonly consumers = new Set<FileLogConsumer>();

  /** Takes ownership of `log`: closing the stream closes it. */
  constructor(
    private readonly log: EventLog,
    private readonly offsets: OffsetStore,
  ) {}

  async append(records: readonly AppendRecord[]): Promise<LogCursor[]> {
    if (records.length === 0) return [];
    // One call's records land together in one segment, ending at `end`: their places
    // follow from their framed sizes.
    const sizes = records.map((r) => encodeRecords([r.payload]).byteLength);
    const end = await this.log.append(records.map((r) => r.payload));
    let at = end.offset - sizes.reduce((n, s) => n + s, 0);
    return sizes.map((size) => {
      const cursor = encodeCursor(end.segment, at, at + size);
      at += size;
      return cursor;
    });
  }

  healthy(): boolean {
    return this.log.healthy();
  }

  async consumer(name: string, opts: ConsumerOptions): Promise<LogConsumer> {
    let position = this.offsets.get(name);
    if (!position) {
      const { start } = opts;
      if (start === "oldest") position = this.log.start();
      else if (start === "now") position = this.log.end();
      else position = decodeCursor(start.after).next;
      // The consumer exists from now on: a "now" consumer reopened later still starts here.
      this.offsets.set(name, position);
    }
    const consumer = new FileLogConsumer(name, this.log, this.offsets, position, opts.sourceId);
    this.consumers.add(consumer);
    consumer.onClose = () => this.consumers.delete(consumer);
    return consumer;
  }

  async trimBefore(cursor: LogCursor): Promise<void> {
    const { position } = decodeCursor(cursor);
    const current = this.log.end().segment;
    for (const { segment } of this.log.segments()) {
      if (segment >= position.segment || segment >= current) break;
      this.log.deleteSegment(segment);
    }
  }

  async close(): Promise<void> {
    for (const c of [...this.consumers]) await c.close();
    await this.log.close();
  }
}

/** Records are scanned this many at a time when a filter skips most of them or lag is counted. */
const SCAN_BATCH = 1000;

class FileLogConsumer implements LogConsumer {
  onClose?: () => void;
  private closed = false;
  private wake?: () => void;

  constructor(
    readonly name: string,
    private readonly log: EventLog,
    private readonly offsets: OffsetStore,
    /** Where the next read starts. */
    private position: LogPosition,
    private readonly sourceId: string | undefined,
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

  async commit(cursor: LogCursor): Promise<void> {
    this.offsets.set(this.name, decodeCursor(cursor).next);
  }

  /** Counts by reading from the committed offset: O(backlog) on this backend. */
  async lag(): Promise<number> {
    let from = this.offsets.get(this.name) ?? this.position;
    let count = 0;
    for (;;) {
      const records = this.log.read(from, SCAN_BATCH);
      if (records.length === 0) return count;
      count += this.sourceId
        ? records.filter((r) => this.matches(frameOf(r))).length
        : records.length;
      from = records.at(-1)!.next;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    this.onClose?.();
  }

  private take(max: number): StreamRecord[] {
    const out: StreamRecord[] = [];
    while (out.length < max) {
      const want = this.sourceId ? SCAN_BATCH : max - out.length;
      const records = this.log.read(this.position, want);
      if (records.length === 0) break;
      for (const r of records) {
        const frame = frameOf(r);
        this.position = r.next;
        if (this.matches(frame)) out.push(frame);
        if (out.length === max) break;
      }
    }
    return out;
  }

  private matches(frame: StreamRecord): boolean {
    return this.sourceId === undefined || frame.sourceId === this.sourceId;
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
      const unsubscribe = this.log.onAppend(done);
      this.wake = done;
    });
  }
}

const decoder = new TextDecoder();

/** sourceId, type and receivedAt from the stored event (until the frame carries them). */
function frameOf(r: LogRecord): StreamRecord {
  let event: { sourceId?: unknown; type?: unknown; receivedAt?: unknown } = {};
  try {
    event = JSON.parse(decoder.decode(r.payload));
  } catch {
    // Not JSON: still delivered, with empty sourceId and type.
  }
  const receivedAt = typeof event.receivedAt === "string" ? Date.parse(event.receivedAt) : NaN;
  return {
    cursor: encodeCursor(r.position.segment, r.position.offset, r.next.offset),
    sourceId: typeof event.sourceId === "string" ? event.sourceId : "",
    type: typeof event.type === "string" ? event.type : "",
    ...(Number.isFinite(receivedAt) ? { receivedAt } : {}),
    payload: r.payload,
  };
}

function encodeCursor(segment: number, offset: number, next: number): LogCursor {
  return `${segment}:${offset}:${next}`;
}

function decodeCursor(cursor: LogCursor): { position: LogPosition; next: LogPosition } {
  const m = /^(\d+):(\d+):(\d+)$/.exec(cursor);
  if (!m) throw new Error(`not a file log cursor: ${JSON.stringify(cursor)}`);
  const segment = Number(m[1]);
  return {
    position: { segment, offset: Number(m[2]) },
    next: { segment, offset: Number(m[3]) },
  };
}
