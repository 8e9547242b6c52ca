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
const DROPPED_FRAME = `event: dropped\ndata: {"reason":"client read too slowly"}\n\n`;

/** Whether an attempt passes a live filter. */
export function matchesFilter(f: LiveFilter, a: LiveAttempt): boolean {
  if (f.source !== undefined && a.sourceId !== f.source) return false;
  if (f.statuses !== undefined && !f.statuses.has(a.status)) return false;
  if (f.types !== undefined && (a.type === undefined || !f.types.has(a.type))) return false;
  if (f.event !== undefined && a.event !== f.event) return false;
  return true;
}

/**
 * One live client: a Server-Sent Events stream with a bounded buffer. Frames are
 * enqueued without waiting; when the client reads too slowly for the buffer to
 * drain, it is dropped (its stream errors and the connection closes).
 */
export class LiveSubscriber {
  readonly stream: ReadableStream<Uint8Array>;
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  private closed = false;
  /** Matching attempts per status since the last rate frame. */
  private counts: Partial<Record<AttemptStatus, number>> = {};
  /** Whether it was dropped for reading too slowly. */
  dropped = false;

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
    try {
      this.controller?.enqueue(encoder.encode(DROPPED_FRAME));
      this.controller?.close();
    } catch {}
    this.finish();
  }

  /** Ends the stream normally (server shutting down). */
  close(): void {
    if (this.closed) return;
    try {
      this.controller?.close();
    } catch {}
    this.finish();
  }

  private write(frame: Uint8Array): boolean {
    const c = this.controller;
    if (this.closed || c === undefined) return false;
    if ((c.desiredSize ?? 0) < frame.byteLength) {
      this.drop();
      return false;
    }
    c.enqueue(frame);
    return true;
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.opts.onClose(this);
  }
}
