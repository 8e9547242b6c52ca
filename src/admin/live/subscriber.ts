import type { AttemptStatus, LiveAttempt } from "./attempt.ts";

/** Which attempts a live client wants (every field optional: absent means any). */
export interface LiveFilter {
  source?: string;
  statuses?: ReadonlySet<AttemptStatus>;
  types?: ReadonlySet<string>;
  event?: string;
}

export interface SubscriberOptions {
  /**
   * Bytes a client may leave unread (beyond what the socket holds) before it is
   * dropped: a client that stops reading must cost the server a bounded amount of
   * memory and never slow ingest down.
   */
  maxBufferedBytes: number;
  /** Called once when the client goes (it left, or it was dropped). */
  onClose: (subscriber: LiveSubscriber) => void;
}

const encoder = new TextEncoder();
/**
 * Frames queued within this long go out as one chunk: one socket write for many
 * attempts instead of one each, which is most of what a watched ingest costs.
 */
const FLUSH_MS = 20;
/**
 * Frames are handed over at once when this many bytes wait: what waits for the timer
 * counts against the client's budget but cannot be read yet, so a busy ingest must not
 * hold back more than a little of it (a client reading at full speed was dropped).
 */
const FLUSH_BYTES = 32 * 1024;
const DROPPED_FRAME = `event: dropped\ndata: {"reason":"client read too slowly"}\n\n`;

/** Whether an attempt passes a live filter. */
export function matchesFilter(
  f: LiveFilter,
  a: Pick<LiveAttempt, "sourceId" | "status" | "type" | "event">,
): boolean {
  if (f.source !== undefined && a.sourceId !== f.source) return false;
  if (f.statuses !== undefined && !f.statuses.has(a.status)) return false;
  if (f.types !== undefined && (a.type === undefined || !f.types.has(a.type))) return false;
  if (f.event !== undefined && a.event !== f.event) return false;
  return true;
}

/**
 * One live client: a Server-Sent Events stream with a bounded buffer. Frames are
 * queued without waiting and handed to the stream together every FLUSH_MS; when the
 * client reads too slowly for the buffer to drain, it is dropped (its stream ends).
 */
export class LiveSubscriber {
  readonly stream: ReadableStream<Uint8Array>;
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  private closed = false;
  /** Matching attempts per status since the last rate frame. */
  private counts: Partial<Record<AttemptStatus, number>> = {};
  /** Whether it was dropped for reading too slowly. */
  dropped = false;
  /** Frames waiting for the next flush, and their bytes. */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly filter: LiveFilter,
    private readonly opts: SubscriberOptions,
  ) {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        cancel: () => this.finish(),
      },
      { highWaterMark: opts.maxBufferedBytes, size: (chunk) => chunk?.byteLength ?? 0 },
    );
  }

  matches(a: LiveAttempt): boolean {
    return matchesFilter(this.filter, a);
  }

  /** Queues an attempt's frame; false (and the client dropped) when its buffer is full. */
  send(a: LiveAttempt, frame: Uint8Array): boolean {
    this.counts[a.status] = (this.counts[a.status] ?? 0) + 1;
    return this.write(frame);
  }

  /** Queues the per-status counts of the last second (also a keep-alive). */
  rate(at: string): boolean {
    const frame = `event: rate\ndata: ${JSON.stringify({ at, counts: this.counts })}\n\n`;
    this.counts = {};
    return this.write(encoder.encode(frame));
  }

  /** Queues raw SSE text (the opening `retry:` line, comments). */
  text(frame: string): boolean {
    return this.write(encoder.encode(frame));
  }

  /**
   * Drops the client: a last `dropped` frame, then the stream ends. What is queued is
   * still sent if the client reads again (an EventSource then reconnects and gets what
   * it missed from the ring by Last-Event-ID); nothing more is queued for it.
   */
  drop(): void {
    if (this.closed) return;
    this.dropped = true;
    this.flush();
    try {
      this.controller?.enqueue(encoder.encode(DROPPED_FRAME));
      this.controller?.close();
    } catch {}
    this.finish();
  }

  /** Ends the stream normally (server shutting down). */
  close(): void {
    if (this.closed) return;
    this.flush();
    try {
      this.controller?.close();
    } catch {}
    this.finish();
  }

  private write(frame: Uint8Array): boolean {
    const c = this.controller;
    if (this.closed || c === undefined) return false;
    if ((c.desiredSize ?? 0) - this.pendingBytes < frame.byteLength) {
      this.drop();
      return false;
    }
    this.pending.push(frame);
    this.pendingBytes += frame.byteLength;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
    return true;
  }

  /** Hands the waiting frames to the stream as one chunk. */
  private flush(): void {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const frames = this.pending;
    if (this.closed || frames.length === 0) return;
    this.pending = [];
    let chunk = frames[0]!;
    if (frames.length > 1) {
      chunk = new Uint8Array(this.pendingBytes);
      let at = 0;
      for (const f of frames) {
        chunk.set(f, at);
        at += f.byteLength;
      }
    }
    this.pendingBytes = 0;
    try {
      this.controller?.enqueue(chunk);
    } catch {}
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.pending = [];
    this.pendingBytes = 0;
    this.opts.onClose(this);
  }
}
