import type { NatsLogStream } from "../../log/nats/nats-log.ts";
import type { LogReader, StreamRecord } from "../../log/stream.ts";
import type { SearchLogSource, SourcedRecord } from "./log-source.ts";

const SEQ = /^\d{1,15}$/;
/**
 * How long a follow read pauses when a reader opened again still gives nothing past the
 * index (at most its `waitMs`): no loop of consumers made and deleted without a pause.
 */
const REOPEN_PAUSE_MS = 1000;

/**
 * Which stream the index was written from (its `created` time), kept with the index:
 * a stream deleted and created again numbers its messages from 1 again, so the index's
 * progress means nothing in it.
 */
export interface StreamIdentity {
  saved(): string | undefined;
  save(created: string): void;
  /**
   * The stream is not the one the index was written from (`created` differs, or it ends
   * before the index's progress): the index is made again from its beginning, and
   * `created` saved with it.
   */
  reset(created: string, why: string): void;
}

/**
 * The search index's view of the NATS log (SPEC 9: "the inspector reads the stream"): a
 * ref is the record's stream sequence, which also numbers it in the index (a page's
 * cursor means the same on every instance), and its stored time is the stream's own.
 * Every instance writes the stream, so there is no local append signal: the index
 * follows it with reads that wait (`follow`).
 *
 * `follow` (the index writer): one reader (an ephemeral consumer) stays open and goes on
 * where the last read ended. Otherwise (searches, for what the index has not reached
 * yet): one stream info tells whether anything lies past `from`; only then a reader is
 * opened, read without waiting and closed, so no consumer lingers between searches.
 * `recordAt` is one message get by sequence (a search fetches a chunk's hits at once).
 */
export class NatsSearchSource implements SearchLogSource {
  private reader: LogReader | undefined;
  /** The `next` the open reader continues from. */
  private readerAt: string | undefined;
  private closed = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly stream: NatsLogStream,
    private readonly opts: { follow: boolean; identity?: StreamIdentity },
  ) {}

  async read(
    from: string | undefined,
    max: number,
    waitMs = 0,
  ): Promise<{ records: SourcedRecord[]; next: string }> {
    const after = from !== undefined && SEQ.test(from) ? from : undefined;
    const nothing = { records: [], next: after ?? "0" };
    if (this.closed) return nothing;
    if (!this.stream.healthy()) {
      // Not an error to log every few seconds: the stream says itself that NATS is away.
      if (!this.opts.follow) this.stream.use(); // a search answers 503
      await this.stream.whenHealthy(waitMs);
      return nothing;
    }
    if (!this.opts.follow) return this.readOnce(after, max);
    if (!this.reader || this.readerAt !== after) {
      if ((await this.check(after)).reset) return this.restart();
      await this.reopen(after);
    }
    let read = await this.take(this.reader!, after, max, waitMs);
    if (read.stale || read.records.length === 0) {
      const state = await this.check(after);
      if (state.reset) return this.restart();
      if (read.stale || state.past) {
        // A reader that gave records at or before the index, or nothing though the
        // stream holds more (one the server lost is made again by the reader itself, after
        // the last record it returned: this is the safety net). One opened where the
        // index is goes on.
        await this.reopen(after);
        read = await this.take(this.reader!, after, max, 0);
        if (read.records.length === 0) await this.pause(Math.min(waitMs, REOPEN_PAUSE_MS));
      }
    }
    this.readerAt = read.next;
    return { records: read.records, next: read.next };
  }

  /**
   * A search's read (not follow): one stream info, then a reader only when the stream
   * holds something past `after`. NATS not answering (a request timeout while the link
   * still reads healthy) is StorageUnavailableError: the search answers 503.
   */
  private async readOnce(
    after: string | undefined,
    max: number,
  ): Promise<{ records: SourcedRecord[]; next: string }> {
    const nothing = { records: [], next: after ?? "0" };
    try {
      const { jsm } = this.stream.use();
      const { state } = await jsm.streams.info(this.stream.settings.stream);
      if (state.messages === 0 || state.last_seq <= Number(after ?? 0)) return nothing;
      const reader = await this.stream.reader({
        start: after === undefined ? "oldest" : { after },
      });
      try {
        const { records, next } = await this.take(reader, after, max, 0);
        return { records, next };
      } finally {
        await reader.close();
      }
    } catch (err) {
      throw this.stream.unreachable(err);
    }
  }

  /**
   * One stream info: whether the stream holds messages past `after`, and (with an
   * identity) whether it is still the stream the index was written from. One that is
   * not (deleted and created again, or ending before the index's progress) resets the
   * index.
   */
  private async check(after: string | undefined): Promise<{ past: boolean; reset: boolean }> {
    if (this.closed) return { past: false, reset: false };
    const { jsm } = this.stream.use();
    const info = await jsm.streams.info(this.stream.settings.stream);
    const { state } = info;
    const floor = Number(after ?? 0);
    const id = this.opts.identity;
    if (id) {
      const saved = id.saved();
      if (saved !== undefined && saved !== info.created) {
        id.reset(info.created, "the stream was deleted and created again");
        return { past: false, reset: true };
      }
      if (state.last_seq < floor) {
        id.reset(info.created, "the stream ends before the index's progress");
        return { past: false, reset: true };
      }
      if (saved === undefined) id.save(info.created);
    }
    return { past: state.messages > 0 && state.last_seq > floor, reset: false };
  }

  /** After a reset: the next read starts from the stream's beginning (the index's new progress). */
  private async restart(): Promise<{ records: SourcedRecord[]; next: string }> {
    const old = this.reader;
    this.reader = undefined;
    this.readerAt = undefined;
    await old?.close();
    return { records: [], next: "0" };
  }

  private pause(ms: number): Promise<void> {
    if (this.closed || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async reopen(after: string | undefined): Promise<void> {
    const old = this.reader;
    this.reader = undefined;
    await old?.close();
    this.reader = await this.stream.reader({ start: after === undefined ? "oldest" : { after } });
  }

  /**
   * Records past `after` from the reader. One the client made again after the server
   * lost it starts over where it was first opened: what it gives again is skipped, and
   * `stale` says so.
   */
  private async take(
    reader: LogReader,
    after: string | undefined,
    max: number,
    waitMs: number,
  ): Promise<{ records: SourcedRecord[]; next: string; stale: boolean }> {
    const floor = Number(after ?? 0);
    const got: StreamRecord[] = await reader.read(max, waitMs);
    const records = got.filter((r) => Number(r.cursor) > floor).map(sourced);
    return {
      records,
      next: records.at(-1)?.ref ?? after ?? "0",
      stale: records.length < got.length,
    };
  }

  async lastSeq(): Promise<number> {
    const { jsm } = this.stream.use();
    try {
      const { state } = await jsm.streams.info(this.stream.settings.stream);
      return state.last_seq;
    } catch (err) {
      throw this.stream.unreachable(err);
    }
  }

  async recordAt(ref: string): Promise<SourcedRecord | undefined> {
    if (!SEQ.test(ref)) return undefined;
    // Unreachable NATS throws (StorageUnavailableError): never "not held" on a guess.
    const { jsm } = this.stream.use();
    const { stream, subjectPrefix } = this.stream.settings;
    const m = await jsm.streams
      .getMessage(stream, { seq: Number(ref) })
      .catch((err) => Promise.reject(this.stream.unreachable(err)));
    // Gone: retention (limits, or a purge) deleted it.
    if (!m?.subject.startsWith(`${subjectPrefix}.`)) return undefined;
    return { ref, payload: m.data, storedAt: m.time.getTime(), seq: m.seq };
  }

  /** Closes the open reader (a read waiting in it ends). */
  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    const reader = this.reader;
    this.reader = undefined;
    await reader?.close();
  }
}

function sourced(r: StreamRecord): SourcedRecord {
  const seq = Number(r.cursor);
  return { ref: r.cursor, payload: r.payload, storedAt: r.receivedAt, seq };
}
