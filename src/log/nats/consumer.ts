import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  JetStreamApiCodes,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { createInbox, type Msg, nanos } from "@nats-io/transport-node";
import { StorageUnavailableError } from "../../storage/unavailable.ts";
import {
  type Backlog,
  type ConsumerOptions,
  type LogConsumer,
  LogConsumerConflictError,
  type LogCursor,
  type StartAt,
  type StreamRecord,
} from "../stream.ts";
import {
  consumerConfig,
  consumerName,
  deliverFrom,
  isApiError,
  type NatsLogStream,
} from "./nats-log.ts";

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
 * there instead of waiting until it is full. `commit` acks the records `read` returned
 * up to and including the cursor, in the order it returned them (not by sequence: a
 * message another reader gave back comes again with a lower sequence, after later
 * ones), and waits for the server to confirm each ack; `close` naks what it holds, so
 * the next reader gets those messages at once, not after `ack_wait`. A read that ends
 * after `close` naks what it got. A reader that dies without closing leaves them to
 * `ack_wait`.
 *
 * The consumer is made on the server when first needed (NATS may be down when it is
 * opened) and again if the server lost it (`recover`). While NATS is unreachable `read`
 * waits up to its `waitMs` and returns nothing; `commit` and `lag` throw
 * StorageUnavailableError.
 */
export class NatsLogConsumer implements LogConsumer {
  /** Messages received and neither acked nor nak'ed, by sequence (told "still working" on). */
  private held = new Map<number, Held>();
  /** Sequences `read` returned and `commit` has not reached yet, in the order returned. */
  private returned: number[] = [];
  /** Reads in flight (`close` waits for them, so what they get after it is nak'ed). */
  private readonly reading = new Set<Promise<unknown>>();
  /** Tells the server "still working" on held messages while this reader lives. */
  private progressTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  private created = false;
  /** Where a consumer made again because the server lost it starts (else `opts.start`). */
  private restartAt: StartAt | undefined;
  /** The newest sequence `read` returned (a reader) or `commit` acked (a durable consumer). */
  private lastSeq: number | undefined;
  /** A durable consumer's ack floor as last seen on the server (every record up to it acked). */
  private floorSeen: number | undefined;
  /** A `recover` in progress (reads at once share it). */
  private recovering: Promise<boolean> | undefined;
  private readonly durable: string;
  onClose?: () => void;

  constructor(
    readonly name: string,
    private readonly stream: NatsLogStream,
    private readonly opts: ConsumerOptions,
    /** A `LogReader`: no acks, nothing held or nak'ed; the server consumer is deleted on close. */
    private readonly ephemeral = false,
  ) {
    this.durable = consumerName(name);
  }

  /**
   * Creates the durable consumer on the server if it does not exist (its start applies
   * only then). An existing one whose `ack_wait` or `max_ack_pending` differ from the
   * settings is updated (no record depends on them). One whose subject filter differs
   * (the connection's source changed) is refused with LogConsumerConflictError: updating
   * the filter, or deleting and making it again, would silently drop the old source's
   * records it had not delivered yet (and skip or repeat the new source's), so the
   * operator decides (see README, Scale-out).
   */
  async ensure(): Promise<void> {
    if (this.created) return;
    const { jsm } = this.stream.use();
    const { stream } = this.stream.settings;
    const start = this.restartAt ?? this.opts.start;
    const wanted: Partial<ConsumerConfig> = this.ephemeral
      ? {
          name: this.durable,
          ack_policy: AckPolicy.None,
          inactive_threshold: nanos(5 * 60_000),
          ...(this.opts.sourceId === undefined ? {} : { filter_subject: this.filter }),
          ...deliverFrom(start),
        }
      : consumerConfig(this.durable, { ...this.opts, start }, this.stream.settings);
    let have: ConsumerInfo;
    try {
      have = await jsm.consumers.info(stream, this.durable);
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
      try {
        // Two instances creating it at once: the server accepts the same config twice.
        this.sawInfo(await jsm.consumers.add(stream, wanted));
        this.created = true;
        return;
      } catch (addErr) {
        // Made meanwhile with another start (two instances making a lost one again):
        // that one is used, like any existing consumer.
        have = await jsm.consumers.info(stream, this.durable).catch(() => {
          throw addErr;
        });
      }
    }
    this.sawInfo(have);
    if (!this.ephemeral) await this.reconcile(have.config, wanted);
    this.created = true;
  }

  /**
   * Learns the durable consumer's ack floor from the server's info (`ensure`, `lag`,
   * `backlog`, and the stream's `backlog` and `committed`, which delivery asks every
   * second): where `recover` makes it again if the server loses it. Before any ack the
   * floor is what the consumer started after (its `delivered` before any delivery).
   */
  sawInfo(info: ConsumerInfo): void {
    if (this.ephemeral || info.name !== this.durable) return;
    let floor: number | undefined;
    if (info.ack_floor.consumer_seq > 0) floor = info.ack_floor.stream_seq;
    else if (info.delivered.consumer_seq === 0) floor = info.delivered.stream_seq;
    if (floor !== undefined) this.floorSeen = Math.max(this.floorSeen ?? 0, floor);
  }

  /** Brings an existing durable consumer's settings to `wanted`, or refuses a different filter. */
  private async reconcile(have: ConsumerConfig, wanted: Partial<ConsumerConfig>): Promise<void> {
    const { stream } = this.stream.settings;
    const haveFilter = have.filter_subject || undefined;
    const wantFilter = wanted.filter_subject || undefined;
    if (haveFilter !== wantFilter) {
      throw new LogConsumerConflictError(
        this.name,
        `nats consumer ${this.durable} of stream ${stream} reads ${haveFilter ?? "every subject"}, ` +
          `connection ${this.name} now reads ${wantFilter ?? "every source"}: not delivering, so ` +
          "the old source's records it has not delivered are not dropped. Set the source back, " +
          `delete the consumer (nats consumer rm ${stream} ${this.durable}; made again at the ` +
          "connection's start), or use a new connection id",
      );
    }
    const update: Partial<ConsumerConfig> = {};
    if (have.ack_wait !== wanted.ack_wait) update.ack_wait = wanted.ack_wait;
    if (have.max_ack_pending !== wanted.max_ack_pending) {
      update.max_ack_pending = wanted.max_ack_pending;
    }
    if (Object.keys(update).length === 0) return;
    const { jsm } = this.stream.use();
    await jsm.consumers.update(stream, this.durable, update);
    this.stream.settings.logger?.info(
      { consumer: this.durable, stream, ...update },
      `nats consumer ${this.durable} updated to the configured ack_wait / max_ack_pending`,
    );
  }

  async read(max: number, waitMs = 0): Promise<StreamRecord[]> {
    if (this.closed || max < 1) return [];
    const reading = this.readNow(max, waitMs);
    this.reading.add(reading);
    try {
      return await reading;
    } finally {
      this.reading.delete(reading);
    }
  }

  private async readNow(max: number, waitMs: number): Promise<StreamRecord[]> {
    if (!this.stream.healthy()) {
      await this.stream.whenHealthy(waitMs);
      if (!this.stream.healthy() || this.closed) return [];
    }
    await this.ensure();
    if (this.closed) return [];
    let msgs = await this.pullOrRecover({ batch: max, no_wait: true }, 0);
    if (msgs.length === 0 && waitMs > 0 && !this.closed) {
      // Wait for the first message only (a batch of one ends with it), then take what
      // else is there at once.
      msgs = await this.pullOrRecover({ batch: 1, expires: waitMs * 1_000_000 }, waitMs);
      if (msgs.length > 0 && max > 1 && !this.closed)
        msgs.push(...(await this.pull({ batch: max - 1, no_wait: true }, 0)).msgs);
    }
    if (this.closed) {
      // Closed meanwhile: nobody will read these, so the next reader gets them now.
      this.giveBack(msgs);
      return [];
    }
    const records = msgs.map((m) => this.toRecord(m));
    if (!this.ephemeral) for (const r of records) this.returned.push(Number(r.cursor));
    else if (records.length > 0) this.lastSeq = Number(records.at(-1)!.cursor);
    return records;
  }

  /**
   * A pull, and if the server did not answer it at all (no message, no status: what
   * nats-server 2.9 does for a consumer it no longer has) or said the consumer is gone,
   * `recover`, then the same pull once more if the consumer was made again. A healthy
   * consumer always answers (messages, or a status at its end), so this costs nothing
   * while it is there.
   */
  private async pullOrRecover(
    request: { batch: number; no_wait?: boolean; expires?: number },
    waitMs: number,
  ): Promise<Msg[]> {
    const { msgs, lost } = await this.pull(request, waitMs);
    if (!lost || this.closed || !this.stream.healthy()) return msgs;
    try {
      if (!(await this.recover()) || this.closed) return msgs;
    } catch (err) {
      if (!this.stream.healthy()) return msgs; // NATS went away meanwhile: as any read then
      throw err;
    }
    // Made again: no wait this time (the caller's wait is spent).
    return (await this.pull({ batch: request.batch, no_wait: true }, 0)).msgs;
  }

  /**
   * Whether the server still has the consumer (one info); if not, makes it again and
   * returns true. A reader goes on after the last record it returned. A durable
   * consumer's ack floor went with it: the new one starts after the floor last seen
   * (records acked since come once more: at least once; not after what this instance
   * committed, which would lose records other instances read below it and never ack
   * now), or at the first record this instance read and did not commit if lower (its
   * old ack subjects are dead: it comes again). A stream that no longer holds that
   * point (deleted and made again) is read from its oldest record. A consumer another
   * instance made again meanwhile is used as it is.
   */
  private recover(): Promise<boolean> {
    this.recovering ??= (async () => {
      const { jsm } = this.stream.use();
      const { stream, logger } = this.stream.settings;
      try {
        await jsm.consumers.info(stream, this.durable);
        return false; // there: slow, or a connection that dropped the request
      } catch (err) {
        if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) return false;
      }
      let after = this.lastSeq;
      if (!this.ephemeral) {
        after = this.floorSeen ?? this.lastSeq;
        for (const seq of this.held.keys()) after = Math.min(after ?? seq - 1, seq - 1);
        this.held.clear();
        this.returned = [];
        this.floorSeen = undefined; // the new consumer's, from its first info
      }
      let start: StartAt = this.opts.start;
      if (after !== undefined) {
        const { state } = await jsm.streams.info(stream);
        start = after > state.last_seq ? "oldest" : { after: String(after) };
      }
      this.restartAt = start;
      this.created = false;
      await this.ensure();
      logger?.warn(
        { consumer: this.durable, stream, start },
        `nats consumer ${this.durable} was gone from the server (deleted, or idle past its ` +
          `inactive threshold): made again, starting ${typeof start === "object" ? `after ${start.after}` : `at the ${start}`}`,
      );
      return true;
    })().finally(() => {
      this.recovering = undefined;
    });
    return this.recovering;
  }

  /**
   * Acks the records `read` returned up to and including `cursor`, in the order it
   * returned them; later ones (a read that ended while the caller worked, a redelivery
   * with a lower sequence) stay held. A cursor it never returned acks nothing.
   */
  async commit(cursor: LogCursor): Promise<void> {
    const upTo = parseSeq(cursor);
    const end = this.returned.indexOf(upTo);
    if (end < 0) return;
    const done = this.returned.splice(0, end + 1);
    const { nc } = this.stream.use();
    const acks: Promise<unknown>[] = [];
    let newest = 0;
    for (const seq of done) {
      const h = this.held.get(seq);
      if (!h) continue; // returned twice (redelivered while held): acked once
      this.held.delete(seq);
      newest = Math.max(newest, seq);
      // A request, not a plain publish: the server answers once the ack is recorded.
      acks.push(nc.request(h.reply, "+ACK", { timeout: PULL_GRACE_MS }));
    }
    try {
      await Promise.all(acks);
      if (newest > 0) this.lastSeq = Math.max(this.lastSeq ?? 0, newest);
    } catch (err) {
      // Unacked messages come again after ack_wait (at least once).
      throw new StorageUnavailableError("nats", `ack failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  async lag(): Promise<number> {
    const info = await this.ifThere(() => {
      const { jsm } = this.stream.use();
      return jsm.consumers.info(this.stream.settings.stream, this.durable);
    });
    this.sawInfo(info);
    return info.num_pending + info.num_ack_pending;
  }

  async backlog(): Promise<Backlog> {
    return this.ifThere(() => {
      const { jsm } = this.stream.use();
      return consumerBacklog(jsm, this.stream.settings.stream, this.durable, this.filter, (info) =>
        this.sawInfo(info),
      );
    });
  }

  /** `ask` of the consumer; once more after `recover` if the server lost it. */
  private async ifThere<T>(ask: () => Promise<T>): Promise<T> {
    await this.ensure();
    try {
      return await ask();
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound) || !(await this.recover())) {
        throw err;
      }
      return ask();
    }
  }

  /** The subjects this consumer reads. */
  private get filter(): string {
    const prefix = this.stream.settings.subjectPrefix;
    return this.opts.sourceId === undefined ? `${prefix}.>` : `${prefix}.${this.opts.sourceId}`;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose?.();
    if (this.ephemeral) {
      if (this.created && this.stream.healthy()) {
        const { jsm } = this.stream.use();
        await jsm.consumers.delete(this.stream.settings.stream, this.durable).catch(() => false);
      }
      return;
    }
    clearInterval(this.progressTimer);
    this.progressTimer = undefined;
    const held = [...this.held.values()].sort((a, b) => a.seq - b.seq);
    this.held.clear();
    this.returned = [];
    if (this.stream.healthy()) {
      const { nc } = this.stream.use();
      // In order, so the server redelivers them in order.
      for (const h of held) nc.publish(h.reply, "-NAK");
      await nc.flush().catch(() => undefined);
    }
    // A pull still out may get messages until it expires (the server cannot be told to
    // end it): its read naks them when it ends, so they do not wait for ack_wait.
    await Promise.allSettled([...this.reading]);
  }

  /** Naks messages nobody will read (in order), so the server hands them out again at once. */
  private giveBack(msgs: Msg[]): void {
    if (this.ephemeral || msgs.length === 0 || !this.stream.healthy()) return;
    const { nc } = this.stream.use();
    for (const m of msgs) nc.publish(m.reply!, "-NAK");
  }

  /**
   * While this reader holds messages it tells the server it is still working on them
   * (`+WPI`, every third of `ack_wait`): a batch whose destination is slow or retried for
   * hours stays with this instance instead of going to a second one after `ack_wait`. Only
   * a reader that dies (no more `+WPI`) or closes gives its messages up.
   */
  private keepHolding(): void {
    if (this.progressTimer !== undefined || this.closed) return;
    const every = Math.max(250, Math.floor(this.stream.settings.ackWaitMs / 3));
    this.progressTimer = setInterval(() => {
      if (this.held.size === 0) {
        clearInterval(this.progressTimer);
        this.progressTimer = undefined;
        return;
      }
      if (!this.stream.healthy()) return;
      const { nc } = this.stream.use();
      for (const h of this.held.values()) nc.publish(h.reply, "+WPI");
    }, every);
    this.progressTimer.unref?.();
  }

  /**
   * One pull request; resolves with its messages when the server ends it (a status) or
   * it is full. `lost`: no message and no answer within the wait and `PULL_GRACE_MS`
   * (nats-server 2.9 does not answer pulls to a consumer it no longer has), or a status
   * that says the consumer is gone (503 no responders, 409 consumer deleted).
   */
  private async pull(
    request: { batch: number; no_wait?: boolean; expires?: number },
    waitMs: number,
  ): Promise<{ msgs: Msg[]; lost: boolean }> {
    const { nc } = this.stream.use();
    const { stream } = this.stream.settings;
    const inbox = createInbox();
    const sub = nc.subscribe(inbox);
    let answered = false;
    const timer = setTimeout(() => sub.unsubscribe(), waitMs + PULL_GRACE_MS);
    const msgs: Msg[] = [];
    try {
      nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${this.durable}`, JSON.stringify(request), {
        reply: inbox,
      });
      for await (const m of sub) {
        // 404 no messages, 408 request expired, 409 limits: the request is over.
        if (!m.reply) {
          const code = m.headers?.code;
          const gone =
            code === 503 ||
            (code === 409 && /consumer deleted/i.test(m.headers?.description ?? ""));
          answered = !gone;
          break;
        }
        answered = true;
        msgs.push(m);
        if (msgs.length >= request.batch) break;
      }
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
    return { msgs, lost: !answered && msgs.length === 0 };
  }

  private toRecord(m: Msg): StreamRecord {
    const info = parseAckSubject(m.reply!);
    if (!this.ephemeral) {
      this.held.set(info.seq, { seq: info.seq, reply: m.reply! });
      this.keepHolding();
    }
    return {
      cursor: String(info.seq),
      sourceId: m.subject.slice(this.stream.settings.subjectPrefix.length + 1),
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

/**
 * A consumer's backlog from the server's counters (pending and read-not-acked), and the
 * store time of the first record past its ack floor that its filter matches (the
 * first 32 past it looked at, one by one; `next_by_subj` on STREAM.MSG.GET, which
 * nats-server 2.9 has without direct gets and retention uses, would find it at once).
 */
export async function consumerBacklog(
  jsm: JetStreamManager,
  stream: string,
  durable: string,
  filter: string,
  /** Given the consumer's info (its ack floor, for the readers of it). */
  onInfo?: (info: ConsumerInfo) => void,
): Promise<Backlog> {
  const info = await jsm.consumers.info(stream, durable);
  onInfo?.(info);
  const records = info.num_pending + info.num_ack_pending;
  if (records === 0) return { records };
  const prefix = filter.endsWith(".>") ? filter.slice(0, -1) : undefined;
  for (let seq = info.ack_floor.stream_seq + 1, n = 0; n < 32; seq++, n++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (!m) continue;
    if (prefix ? m.subject.startsWith(prefix) : m.subject === filter) {
      return { records, oldestAt: m.time.getTime() };
    }
  }
  return { records };
}
