import type { JetStreamManager } from "@nats-io/jetstream";
import { createInbox, type Msg, type NatsConnection } from "@nats-io/transport-node";
import type { LogConsumer, LogCursor, StreamRecord } from "../stream.ts";

/** The header that carries the event type beside the payload. */
export const TYPE_HEADER = "Sluice-Type";

/** Extra time a pull request gets beyond what it asked the server for. */
const PULL_GRACE_MS = 5_000;

interface Held {
  seq: number;
  /** The message's ack subject (the newest, if the server redelivered it). */
  reply: string;
}

/**
 * A durable pull consumer of the stream (explicit acks), which any number of sluice
 * instances may open under the same name: the server hands each message to one of
 * them. Reads are raw pull requests with `no_wait`, so a batch returns with what is
 * there instead of waiting until it is full. `commit` acks every message this reader
 * holds up to the cursor and waits for the server to confirm each ack; `close` naks
 * what it holds, so the next reader gets those messages at once, not after `ack_wait`.
 * A reader that dies without closing leaves them to `ack_wait`.
 */
export class NatsLogConsumer implements LogConsumer {
  private held = new Map<number, Held>();
  private closed = false;

  constructor(
    readonly name: string,
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    /** The consumer's name on the server (see `consumerName`). */
    private readonly durable: string,
    private readonly subjectPrefix: string,
  ) {}

  async read(max: number, waitMs = 0): Promise<StreamRecord[]> {
    if (this.closed || max < 1) return [];
    let msgs = await this.pull({ batch: max, no_wait: true }, 0);
    if (msgs.length === 0 && waitMs > 0) {
      // Wait for the first message only (a batch of one ends with it), then take what
      // else is there at once.
      msgs = await this.pull({ batch: 1, expires: waitMs * 1_000_000 }, waitMs);
      if (msgs.length > 0 && max > 1)
        msgs.push(...(await this.pull({ batch: max - 1, no_wait: true }, 0)));
    }
    return msgs.map((m) => this.toRecord(m));
  }

  async commit(cursor: LogCursor): Promise<void> {
    const upTo = parseSeq(cursor);
    const acks: Promise<unknown>[] = [];
    for (const [seq, h] of this.held) {
      if (seq > upTo) continue;
      this.held.delete(seq);
      // A request, not a plain publish: the server answers once the ack is recorded.
      acks.push(this.nc.request(h.reply, "+ACK", { timeout: PULL_GRACE_MS }));
    }
    await Promise.all(acks);
  }

  async lag(): Promise<number> {
    const info = await this.jsm.consumers.info(this.stream, this.durable);
    return info.num_pending + info.num_ack_pending;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const held = [...this.held.values()].sort((a, b) => a.seq - b.seq);
    this.held.clear();
    if (this.nc.isClosed()) return;
    // In order, so the server redelivers them in order.
    for (const h of held) this.nc.publish(h.reply, "-NAK");
    await this.nc.flush().catch(() => undefined);
  }

  /** One pull request; resolves with its messages when the server ends it (a status) or it is full. */
  private async pull(
    request: { batch: number; no_wait?: boolean; expires?: number },
    waitMs: number,
  ): Promise<Msg[]> {
    const inbox = createInbox();
    const sub = this.nc.subscribe(inbox);
    const timer = setTimeout(() => sub.unsubscribe(), waitMs + PULL_GRACE_MS);
    const msgs: Msg[] = [];
    try {
      this.nc.publish(
        `$JS.API.CONSUMER.MSG.NEXT.${this.stream}.${this.durable}`,
        JSON.stringify(request),
        { reply: inbox },
      );
      for await (const m of sub) {
        // 404 no messages, 408 request expired, 409 limits: the request is over.
        if (!m.reply) break;
        msgs.push(m);
        if (msgs.length >= request.batch) break;
      }
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
    return msgs;
  }

  private toRecord(m: Msg): StreamRecord {
    const info = parseAckSubject(m.reply!);
    this.held.set(info.seq, { seq: info.seq, reply: m.reply! });
    return {
      cursor: String(info.seq),
      sourceId: m.subject.slice(this.subjectPrefix.length + 1),
      type: m.headers?.get(TYPE_HEADER) ?? "",
      receivedAt: info.receivedAt,
      payload: m.data,
    };
  }
}

/** A cursor of this backend: the stream sequence. */
export function parseSeq(cursor: LogCursor): number {
  if (!/^\d+$/.test(cursor)) throw new Error(`not a NATS log cursor: ${JSON.stringify(cursor)}`);
  return Number(cursor);
}

/**
 * Stream sequence and store time from a JetStream ack subject:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>`, or from 2.10
 * on with domain and account hash after `$JS.ACK` (and a random token at the end).
 */
export function parseAckSubject(reply: string): { seq: number; receivedAt: number } {
  const t = reply.split(".");
  const at = t.length === 9 ? 2 : 4;
  const seq = Number(t[at + 3]);
  const ns = t[at + 5];
  if (t[0] !== "$JS" || t[1] !== "ACK" || !Number.isInteger(seq) || !ns) {
    throw new Error(`not a JetStream ack subject: ${reply}`);
  }
  return { seq, receivedAt: Number(BigInt(ns) / 1_000_000n) };
}
