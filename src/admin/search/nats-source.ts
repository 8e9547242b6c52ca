import type { NatsLogStream } from "../../log/nats/nats-log.ts";
import type { LogReader, StreamRecord } from "../../log/stream.ts";
import type { SearchLogSource, SourcedRecord } from "./log-source.ts";

const SEQ = /^\d{1,15}$/;

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

  constructor(
    private readonly stream: NatsLogStream,
    private readonly opts: { follow: boolean },
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
    if (!this.opts.follow) {
      const { jsm } = this.stream.use();
      const { state } = await jsm.streams.info(this.stream.settings.stream);
      if (state.messages === 0 || state.last_seq <= Number(after ?? 0)) return nothing;
      const reader = await this.stream.reader({
        start: after === undefined ? "oldest" : { after },
      });
      try {
        return await this.take(reader, after, max, 0);
      } finally {
        await reader.close();
      }
    }
    if (!this.reader || this.readerAt !== after) {
      const old = this.reader;
      this.reader = undefined;
      await old?.close();
      this.reader = await this.stream.reader({
        start: after === undefined ? "oldest" : { after },
      });
    }
    const read = await this.take(this.reader, after, max, waitMs);
    this.readerAt = read.next;
    return read;
  }

  /**
   * Records past `after` from the reader. One the server made again after losing it
   * (a restart) starts over where it was opened: what it gives again is skipped.
   */
  private async take(
    reader: LogReader,
    after: string | undefined,
    max: number,
    waitMs: number,
  ): Promise<{ records: SourcedRecord[]; next: string }> {
    const floor = Number(after ?? 0);
    for (let rounds = 0; rounds < 64; rounds++) {
      const got: StreamRecord[] = await reader.read(max, rounds === 0 ? waitMs : 0);
      if (got.length === 0) break;
      const records = got.filter((r) => Number(r.cursor) > floor).map(sourced);
      if (records.length > 0) return { records, next: records.at(-1)!.ref };
    }
    return { records: [], next: after ?? "0" };
  }

  async recordAt(ref: string): Promise<SourcedRecord | undefined> {
    if (!SEQ.test(ref)) return undefined;
    // Unreachable NATS throws (StorageUnavailableError): never "not held" on a guess.
    const { jsm } = this.stream.use();
    const { stream, subjectPrefix } = this.stream.settings;
    const m = await jsm.streams.getMessage(stream, { seq: Number(ref) });
    // Gone: retention (limits, or a purge) deleted it.
    if (!m?.subject.startsWith(`${subjectPrefix}.`)) return undefined;
    return { ref, payload: m.data, storedAt: m.time.getTime(), seq: m.seq };
  }

  /** Closes the open reader (a read waiting in it ends). */
  async close(): Promise<void> {
    this.closed = true;
    const reader = this.reader;
    this.reader = undefined;
    await reader?.close();
  }
}

function sourced(r: StreamRecord): SourcedRecord {
  const seq = Number(r.cursor);
  return { ref: r.cursor, payload: r.payload, storedAt: r.receivedAt, seq };
}
