import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import {
  ClosedConnectionError,
  ConnectionError,
  connect,
  createInbox,
  DrainingConnectionError,
  headers,
  type Msg,
  type MsgHdrs,
  millis,
  type NatsConnection,
  NoRespondersError,
  nanos,
  RequestError,
  TimeoutError,
} from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { BackendHealth } from "../../state/redis.ts";
import { StorageUnavailableError } from "../../storage/unavailable.ts";
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
} from "../stream.ts";
import { consumerBacklog, NatsLogConsumer, parseSeq, TYPE_HEADER } from "./consumer.ts";
import { deleteRange, purgeKeepsPending, retainStream } from "./retention.ts";
import { redactedServer } from "./servers.ts";

export interface NatsLogOptions {
  servers: string[];
  /** The stream's name (SPEC 9: `SLUICE`). */
  stream: string;
  /** Subjects are `<subjectPrefix>.<sourceId>` (default `sluice.events`). */
  subjectPrefix?: string;
  replicas?: number;
  /** JetStream's own `Nats-Msg-Id` window; SPEC 9 asks for at least 2 minutes (the default). */
  duplicateWindowMs?: number;
  /** How long a read message stays with its reader before the server hands it to another. */
  ackWaitMs?: number;
  /** Messages a consumer may have read and not committed (the server's `max_ack_pending`). */
  maxAckPending?: number;
  /** How long one publish waits for its ack. */
  publishTimeoutMs?: number;
  /** How long `open` waits for a first connection before it returns anyway (not ready). */
  openWaitMs?: number;
  /** Retention purges (true) or deletes one by one (false); default: by the server's version (tests). */
  purgeKeepsPending?: boolean;
  /** At most this many one-by-one deletes per retention pass (default 50 000). */
  maxRetentionDeletes?: number;
  logger?: Logger;
  /** An append whose publish acks all came: seconds from its first publish to its last ack (`/metrics`). */
  onFlush?: (seconds: number, records: number) => void;
  /** An append that failed (NATS unusable, a publish refused or not acked in time). */
  onWriteFailure?: (error: Error) => void;
}

const DEFAULTS = {
  subjectPrefix: "sluice.events",
  replicas: 1,
  duplicateWindowMs: 2 * 60_000,
  ackWaitMs: 30_000,
  maxAckPending: 10_000,
  publishTimeoutMs: 5_000,
  openWaitMs: 2_000,
};

type Options = NatsLogOptions & typeof DEFAULTS;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A header value the client would refuse (CR, LF) or change (it trims whitespace). */
const UNPLAIN = /^\s|[\r\n]|\s$/;

/**
 * A record's headers, encoded once, exactly as the client's own (`headers()`, `set`,
 * `encode`) would: `NATS/1.0`, then `Sluice-Type`, then `Nats-Msg-Id`. The client's
 * `publish` only calls `encode()` on what it is given; building its header map (two key
 * checks and a key search per `set`, then a string walk) was ~9% of a publish's client
 * CPU. Values that are not plain go through the client's own path (which trims, or
 * refuses CR/LF), so nothing published changes.
 */
export function publishHeaders(type: string, msgId: string | undefined): MsgHdrs {
  if (UNPLAIN.test(type) || (msgId !== undefined && UNPLAIN.test(msgId))) {
    const h = headers();
    h.set(TYPE_HEADER, type);
    if (msgId !== undefined) h.set("Nats-Msg-Id", msgId);
    return h;
  }
  const text =
    msgId === undefined
      ? `NATS/1.0\r\n${TYPE_HEADER}: ${type}\r\n\r\n`
      : `NATS/1.0\r\n${TYPE_HEADER}: ${type}\r\nNats-Msg-Id: ${msgId}\r\n\r\n`;
  const bytes = encoder.encode(text);
  return { encode: () => bytes } as unknown as MsgHdrs;
}

/** A messageId that goes into `Nats-Msg-Id` as it is: printable ASCII, no space at either end. */
const PLAIN_ID = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * The `Nats-Msg-Id` of a record: `<sourceId>:<messageId>` for the ids clients send
 * (UUIDs and the like). Any other messageId (one a client may send: up to 100
 * characters of anything) goes in as `<sourceId>#<SHA-256 of it, hex>`: the client
 * trims a header value (so " a" and "a" would be one message, and one of two
 * acknowledged events would not be stored) and refuses CR and LF (every retry of such
 * an event would be a 503). sourceIds never hold ':' or '#' (config pattern
 * `[A-Za-z0-9_.-]+`), and the hashed form holds no ':', so the two forms never meet.
 */
export function natsMsgId(sourceId: string, messageId: string): string {
  if (PLAIN_ID.test(messageId)) return `${sourceId}:${messageId}`;
  return `${sourceId}#${new Bun.CryptoHasher("sha256").update(messageId).digest("hex")}`;
}

/** SPEC 9: the crash gap (publish acked, dedup key not written) is covered for this long. */
export const MIN_DUPLICATE_WINDOW_MS = 2 * 60_000;

/** Connected and JetStream answering: what appends and consumers need. */
interface Link {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/**
 * The event log on NATS JetStream (SPEC 9): one stream with file storage, one subject per
 * source, each record one message with `Nats-Msg-Id: <sourceId>:<messageId>` (`natsMsgId`) and its type
 * in a header. `append` publishes a call's records together and resolves only once
 * every publish ack is in. JetStream acks before fsync unless the server runs
 * `sync_interval: always` (nats-server 2.10 and later; 2.9 lacks the option). Cursors
 * are stream sequences; consumers are durable pull consumers shared by every instance
 * that opens the same name (see `NatsLogConsumer`).
 *
 * NATS out of reach is no failure of `open`: it returns after `openWaitMs` at most, not
 * healthy; the connection is retried in the background, and the stream is checked (and
 * created if missing) on every (re)connection. Until then `append` throws
 * StorageUnavailableError at once (ingest answers 503, never a 2xx) and `healthy()` is
 * false (`/ready` 503).
 */
export class NatsLogStream implements LogStream {
  private link: Link | undefined;
  private connected = false;
  private streamChecked = false;
  private problem = "not connected yet";
  private closed = false;
  private preparing: Promise<void> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly consumers = new Set<NatsLogConsumer>();
  /** Publish acks awaited, by the token their reply subject ends with. */
  private readonly acks = new Map<string, (ack: { seq: number } | { error: string }) => void>();
  private nextToken = 0;
  /** Reply subjects of publishes are `<inbox>.<token>` (one subscription for all). */
  private readonly inbox = createInbox();
  /** Sleeps of the retry loops (woken by close). */
  private readonly waiters = new Set<() => void>();
  /** Callers of whenHealthy (woken once healthy, or by close). */
  private readonly healthyWaiters = new Set<() => void>();
  private readonly where: string;
  private connecting: Promise<void>;
  /** Whether the last state was logged as up (so each change is logged once). */
  private loggedUp: boolean | undefined;

  private constructor(private readonly opts: Options) {
    this.where = opts.servers.map(redactedServer).join(",");
    this.connecting = this.connectLoop();
  }

  /**
   * Starts connecting and waits up to `openWaitMs` for the stream to be ready. Never
   * throws for NATS being down or the stream being unusable: `healthy()` says, and the
   * reason is logged and in `health()`.
   */
  static async open(options: NatsLogOptions): Promise<NatsLogStream> {
    const log = new NatsLogStream({ ...DEFAULTS, ...options });
    if (!log.healthy()) await log.whenHealthy(log.opts.openWaitMs);
    if (!log.healthy()) log.report();
    return log;
  }

  /** `append`'s last cursor (see LogAppender.appendLast). */
  async appendLast(records: readonly AppendRecord[]): Promise<LogCursor> {
    if (records.length === 0) throw new Error("appendLast: no records");
    return (await this.append(records)).at(-1)!;
  }

  /**
   * Publishes every record at once and resolves with their stream sequences once every
   * publish ack is in. Throws StorageUnavailableError (503, never a 2xx) at once while
   * NATS is unusable, and when an ack is an error or does not come within
   * `publishTimeoutMs`.
   *
   * Plain publishes with a reply subject under one inbox subscription, not the
   * JetStream client's `publish` (a request, a timer and a promise per message): about
   * a fifth of the client CPU per event and three to four times the events/s on one
   * connection (bench/RESULTS.md, "Scale-out: N instances").
   */
  append(records: readonly AppendRecord[]): Promise<LogCursor[]> {
    if (records.length === 0) return Promise.resolve([]);
    // Fail fast while disconnected: the client would buffer and the request hang.
    let nc: NatsConnection;
    try {
      nc = this.use().nc;
    } catch (err) {
      this.opts.onWriteFailure?.(err as Error);
      return Promise.reject(err);
    }
    const started = performance.now();
    const { promise, resolve, reject } = Promise.withResolvers<LogCursor[]>();
    const cursors: LogCursor[] = new Array(records.length);
    const tokens: string[] = new Array(records.length);
    let left = records.length;
    let over = false;
    const finish = (err?: Error) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      for (const t of tokens) this.acks.delete(t);
      // Stored or not, the client is not told so: its retry (same Nats-Msg-Id) is
      // stored once either way while the duplicate window lasts.
      if (err) {
        this.opts.onWriteFailure?.(err);
        reject(err);
      } else {
        this.opts.onFlush?.((performance.now() - started) / 1000, records.length);
        resolve(cursors);
      }
    };
    const timer = setTimeout(
      () =>
        finish(
          new StorageUnavailableError(
            "nats",
            `no publish ack within ${this.opts.publishTimeoutMs} ms`,
          ),
        ),
      this.opts.publishTimeoutMs,
    );
    // Published back to back on one connection, so the server stores them in call order.
    for (let k = 0; k < records.length; k++) {
      const r = records[k]!;
      const token = (this.nextToken++).toString(36);
      tokens[k] = token;
      this.acks.set(token, (ack) => {
        if ("error" in ack) {
          finish(new StorageUnavailableError("nats", ack.error));
          return;
        }
        // A duplicate within the window acks with the first copy's sequence.
        cursors[k] = String(ack.seq);
        if (--left === 0) finish();
      });
      const msgId = r.messageId === undefined ? undefined : natsMsgId(r.sourceId, r.messageId);
      try {
        nc.publish(`${this.opts.subjectPrefix}.${r.sourceId}`, r.payload, {
          headers: publishHeaders(r.type, msgId),
          reply: `${this.inbox}.${token}`,
        });
      } catch (err) {
        finish(new StorageUnavailableError("nats", (err as Error).message, { cause: err }));
        break;
      }
    }
    return promise;
  }

  /** One publish ack (or its failure) from the inbox. */
  private onAck(m: Msg): void {
    const token = m.subject.slice(this.inbox.length + 1);
    const settle = this.acks.get(token);
    if (!settle) return; // its call timed out meanwhile
    this.acks.delete(token);
    if (m.headers?.hasError) {
      // 503: no stream listens on the subject (deleted under us).
      settle({ error: `publish refused: ${m.headers.code} ${m.headers.description}` });
      void this.prepare();
      return;
    }
    try {
      const ack = JSON.parse(decoder.decode(m.data)) as {
        seq?: number;
        error?: { code?: number; description?: string };
      };
      if (ack.error || typeof ack.seq !== "number") {
        settle({ error: `publish refused: ${ack.error?.code} ${ack.error?.description}` });
      } else settle({ seq: ack.seq });
    } catch {
      settle({ error: "publish ack unreadable" });
    }
  }

  healthy(): boolean {
    return this.connected && this.streamChecked && !this.closed;
  }

  /** For `/ready` and logs: the servers (no credentials) and why it is not ready. */
  health(): BackendHealth {
    return this.healthy()
      ? { ok: true }
      : { ok: false, error: `nats ${this.where}: ${this.problem}` };
  }

  async consumer(name: string, opts: ConsumerOptions): Promise<LogConsumer> {
    const consumer = new NatsLogConsumer(name, this, opts);
    this.consumers.add(consumer);
    consumer.onClose = () => this.consumers.delete(consumer);
    // Created on the server now when NATS is there, else on its first read.
    if (this.healthy()) await ensured(consumer);
    return consumer;
  }

  /** An ephemeral consumer with no acks (deleted on close, or by the server once idle). */
  async reader(opts: ReaderOptions): Promise<LogReader> {
    let { start } = opts;
    if (typeof start === "object") {
      // After a record the stream never held (or past its end): from the oldest.
      const { jsm } = this.use();
      const { state } = await jsm.streams.info(this.opts.stream);
      if (!/^\d+$/.test(start.after) || parseSeq(start.after) > state.last_seq) start = "oldest";
    }
    const reader = new NatsLogConsumer(
      `reader-${crypto.randomUUID()}`,
      this,
      { start, sourceId: opts.sourceId },
      true,
    );
    this.consumers.add(reader);
    reader.onClose = () => this.consumers.delete(reader);
    if (this.healthy()) await ensured(reader);
    return reader;
  }

  async backlog(name: string, sourceId?: string): Promise<Backlog | undefined> {
    const { jsm } = this.use();
    const prefix = this.opts.subjectPrefix;
    const filter = sourceId === undefined ? `${prefix}.>` : `${prefix}.${sourceId}`;
    try {
      return await consumerBacklog(jsm, this.opts.stream, consumerName(name), filter, (info) =>
        this.sawInfo(info),
      );
    } catch (err) {
      if (isApiError(err, JetStreamApiCodes.ConsumerNotFound)) return undefined;
      throw err;
    }
  }

  /**
   * Where the record at `cursor` stands for the durable consumer `name`: `committed`
   * when its ack floor (every record up to it acked, by whichever instance read it) is at
   * or past it; `before_start` when the consumer started after it (created with start
   * `now`, or from a later sequence or time): the connection never received it, and its
   * ack floor says nothing about it; else `pending` (a record acked past the floor,
   * others before it still out, counts as pending). Undefined when the consumer does
   * not exist (yet).
   */
  async committed(name: string, cursor: LogCursor): Promise<CommitState | undefined> {
    const { jsm } = this.use();
    const seq = parseSeq(cursor);
    let info: Awaited<ReturnType<typeof jsm.consumers.info>>;
    try {
      info = await jsm.consumers.info(this.opts.stream, consumerName(name));
      this.sawInfo(info);
    } catch (err) {
      if (isApiError(err, JetStreamApiCodes.ConsumerNotFound)) return undefined;
      throw err;
    }
    const { config } = info;
    if (config.deliver_policy === DeliverPolicy.StartSequence) {
      if (seq < (config.opt_start_seq ?? 0)) return "before_start";
    } else if (
      config.deliver_policy === DeliverPolicy.New ||
      config.deliver_policy === DeliverPolicy.StartTime
    ) {
      // Started at the stream's end when it was made (or at a time): a message stored
      // before then was never delivered to it.
      const from = Date.parse(
        config.deliver_policy === DeliverPolicy.New ? info.created : (config.opt_start_time ?? ""),
      );
      const m = await jsm.streams.getMessage(this.opts.stream, { seq }).catch((err) => {
        if (isApiError(err, JetStreamApiCodes.NoMessageFound)) return null;
        throw err;
      });
      if (m && m.time.getTime() < from) return "before_start";
    }
    return info.ack_floor.stream_seq >= seq ? "committed" : "pending";
  }

  /** Tells this instance's readers of the consumer its ack floor (see `NatsLogConsumer.sawInfo`). */
  private sawInfo(info: ConsumerInfo): void {
    for (const c of this.consumers) c.sawInfo(info);
  }

  /** A purge, or one-by-one deletes where the server's purge would forget unacked messages (see `retain`). */
  async trimBefore(cursor: LogCursor): Promise<void> {
    const { jsm, nc } = this.use();
    const seq = parseSeq(cursor);
    if (this.opts.purgeKeepsPending ?? purgeKeepsPending(nc.info?.version)) {
      await jsm.streams.purge(this.opts.stream, { seq });
      return;
    }
    const { state } = await jsm.streams.info(this.opts.stream);
    await deleteRange(jsm, this.opts.stream, state.first_seq, Math.min(seq, state.last_seq + 1));
  }

  /**
   * Removes what the policy allows below every durable consumer's ack floor
   * (`./retention.ts`): a purge on servers whose purge keeps unacked messages pending
   * (2.9.15 on), else one-by-one deletes.
   */
  async retain(policy: LogRetentionPolicy): Promise<RetentionResult> {
    const { jsm, nc } = this.use();
    return retainStream(jsm, this.opts.stream, policy, {
      logger: this.opts.logger,
      purgeKeepsPending: this.opts.purgeKeepsPending ?? purgeKeepsPending(nc.info?.version),
      maxDeletes: this.opts.maxRetentionDeletes,
    });
  }

  async close(): Promise<void> {
    // Together: each waits for its pulls still out (up to their wait) to nak what they get.
    await Promise.all([...this.consumers].map((c) => c.close()));
    this.consumers.clear();
    this.closed = true;
    this.problem = "closed";
    clearTimeout(this.retryTimer);
    for (const w of [...this.waiters, ...this.healthyWaiters]) w();
    await this.connecting;
    const nc = this.link?.nc;
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }

  /** The connection, or StorageUnavailableError while it is not usable. */
  use(): Link {
    if (!this.healthy() || !this.link) throw new StorageUnavailableError("nats", this.problem);
    return this.link;
  }

  /**
   * `err` as StorageUnavailableError when it says NATS did not answer (a request timed
   * out, no responders, the connection closed or failed) while the link may still read
   * healthy: callers answer 503 with Retry-After, as while it is down. Others as they are.
   */
  unreachable(err: unknown): unknown {
    const noAnswer =
      err instanceof TimeoutError ||
      err instanceof RequestError ||
      err instanceof NoRespondersError ||
      err instanceof ClosedConnectionError ||
      err instanceof DrainingConnectionError ||
      err instanceof ConnectionError;
    if (!noAnswer) return err;
    return new StorageUnavailableError("nats", (err as Error).message, { cause: err });
  }

  /** Server-side settings consumers are created with. */
  get settings(): Readonly<Options> {
    return this.opts;
  }

  /** Resolves once healthy, or after `ms` (or at close), whichever comes first. */
  whenHealthy(ms: number): Promise<void> {
    if (this.healthy() || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.healthyWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.healthyWaiters.add(done);
    });
  }

  /** Waits `ms`, or less if the stream closes. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(this.retryTimer);
        this.waiters.delete(done);
        resolve();
      };
      this.retryTimer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  /** Connects until it works (a first connection fails fast; the client reconnects forever after). */
  private async connectLoop(): Promise<void> {
    let delay = 250;
    while (!this.closed) {
      try {
        const nc = await connect({
          servers: this.opts.servers,
          name: "sluice",
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          timeout: 2_000,
          // A hung server (no pong for two pings) counts as lost: reconnect, 503 meanwhile.
          pingInterval: 2_000,
          maxPingOut: 2,
        });
        if (this.closed) {
          await nc.close();
          return;
        }
        const jsm = await jetstreamManager(nc, { timeout: this.opts.publishTimeoutMs });
        this.link = { nc, jsm, js: jetstream(nc, { timeout: this.opts.publishTimeoutMs }) };
        // Kept by the client across reconnections.
        nc.subscribe(`${this.inbox}.*`, { callback: (_err, m) => this.onAck(m) });
        this.connected = true;
        void this.watchStatus(nc);
        void this.prepare();
        return;
      } catch (err) {
        this.problem = (err as Error).message;
        this.report();
        await this.pause(delay);
        delay = Math.min(2_000, delay * 2);
      }
    }
  }

  /** Checks the stream (creating it if missing) until that works, while connected. */
  private prepare(): Promise<void> {
    this.preparing ??= (async () => {
      let delay = 250;
      while (this.connected && !this.closed && this.link) {
        try {
          const problem = await ensureStream(this.link.jsm, this.opts, this.opts.logger);
          if (problem === undefined) {
            this.streamChecked = true;
            this.problem = "";
            break;
          }
          this.problem = problem;
        } catch (err) {
          this.problem = `stream ${this.opts.stream}: ${(err as Error).message}`;
        }
        this.report();
        await this.pause(delay);
        delay = Math.min(5_000, delay * 2);
      }
      this.preparing = undefined;
      this.report();
      if (this.healthy()) for (const w of [...this.healthyWaiters]) w();
    })();
    return this.preparing;
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "staleConnection" || s.type === "close") {
        this.connected = false;
        this.streamChecked = false;
        this.problem = s.type === "close" ? "connection closed" : `disconnected (${s.type})`;
        this.report();
      } else if (s.type === "reconnect") {
        this.connected = true;
        // A server restarted on empty storage has no stream: checked (and made) again.
        void this.prepare();
      }
    }
  }

  /** Logs each change between usable and not, once. */
  private report(): void {
    const up = this.healthy();
    if (up === this.loggedUp || this.closed) return;
    const first = this.loggedUp === undefined;
    this.loggedUp = up;
    const logger = this.opts.logger;
    if (up) {
      if (!first) logger?.info({ nats: this.where }, "nats reachable again");
    } else {
      logger?.error(
        { nats: this.where, reason: this.problem },
        "nats unusable: not ready, ingest answers 503",
      );
    }
  }
}

/** The stream sluice creates when it is missing. */
export function wantedStream(opts: Options): Partial<StreamConfig> & { name: string } {
  return {
    name: opts.stream,
    subjects: [`${opts.subjectPrefix}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    num_replicas: opts.replicas,
    duplicate_window: nanos(opts.duplicateWindowMs),
  };
}

/**
 * How an existing stream differs from what sluice would create, one sentence each.
 * `blocking`: sluice cannot use it (its publishes would not land in the stream, or
 * its consumers would lose records); the rest is logged and lived with.
 */
export function streamDifferences(
  have: StreamConfig,
  opts: Options,
): { blocking: string[]; other: string[] } {
  const blocking: string[] = [];
  const other: string[] = [];
  const want = `${opts.subjectPrefix}.>`;
  if (!have.subjects?.includes(want) && !have.subjects?.includes(">")) {
    blocking.push(
      `subjects are ${JSON.stringify(have.subjects ?? [])}, sluice publishes to "${want}"`,
    );
  }
  if (have.retention !== RetentionPolicy.Limits) {
    blocking.push(
      `retention is "${have.retention}" (sluice needs "limits": with "${have.retention}" a record may go before every connection read it)`,
    );
  }
  if (have.storage !== StorageType.File) {
    other.push(`storage is "${have.storage}", not "file": records do not survive a server restart`);
  }
  if ((have.num_replicas ?? 1) !== opts.replicas) {
    other.push(`replicas are ${have.num_replicas}, the config says ${opts.replicas}`);
  }
  const window = millis(have.duplicate_window ?? 0);
  if (window < MIN_DUPLICATE_WINDOW_MS) {
    other.push(
      `duplicate_window is ${window / 1000} s, under 2 minutes: a crash between the publish ack and the dedup key write may store a retried event twice`,
    );
  } else if (window !== opts.duplicateWindowMs) {
    other.push(
      `duplicate_window is ${window / 1000} s, the config says ${opts.duplicateWindowMs / 1000} s`,
    );
  }
  if (have.discard === "new" && (have.max_bytes > 0 || have.max_msgs > 0)) {
    other.push('discard is "new" with a size limit: publishes fail (ingest 503) once it is full');
  }
  return { blocking, other };
}

/**
 * Makes the stream if it is missing; an existing one is compared with what sluice
 * would make (never changed: operators own it). Returns why sluice cannot use it, or
 * undefined when it can.
 */
async function ensureStream(
  jsm: JetStreamManager,
  opts: Options,
  logger: Logger | undefined,
): Promise<string | undefined> {
  let have: StreamConfig;
  try {
    have = (await jsm.streams.info(opts.stream)).config;
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
    try {
      have = (await jsm.streams.add(wantedStream(opts))).config;
      logger?.info(
        { stream: opts.stream, replicas: opts.replicas },
        `nats stream ${opts.stream} created`,
      );
      return undefined;
    } catch (addErr) {
      // Another instance created it meanwhile: compared below like any existing stream.
      have = (
        await jsm.streams.info(opts.stream).catch(() => {
          throw addErr;
        })
      ).config;
    }
  }
  const { blocking, other } = streamDifferences(have, opts);
  if (other.length > 0 || blocking.length > 0) {
    logger?.error(
      { stream: opts.stream, differences: [...blocking, ...other] },
      `nats stream ${opts.stream} exists with a config that differs from sluice's: ${[...blocking, ...other].join("; ")}` +
        (blocking.length > 0 ? " (not usable: fix or delete the stream)" : " (used as it is)"),
    );
  }
  if (blocking.length > 0) {
    return `stream ${opts.stream} is not usable: ${blocking.join("; ")}`;
  }
  return undefined;
}

/** Creates `c` on the server; closed (and so forgotten by the log) when that fails. */
async function ensured(c: NatsLogConsumer): Promise<void> {
  try {
    await c.ensure();
  } catch (err) {
    await c.close().catch(() => undefined);
    throw err;
  }
}

/** Where a stored record stands for a durable consumer (`NatsLogStream.committed`). */
export type CommitState = "committed" | "before_start" | "pending";

export function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/**
 * A consumer name the server accepts (no `.`, `*`, `>`, spaces or slashes) that two
 * different names never share: every character but letters, digits and `-` becomes
 * `_` and its code in hex (connection ids may hold `.` and `_`).
 */
export function consumerName(name: string): string {
  return name.replace(/[^A-Za-z0-9-]/g, (c) => `_${c.codePointAt(0)!.toString(16)}_`);
}

/** The server-side config of a durable pull consumer (explicit acks) starting where asked. */
export function consumerConfig(
  durable: string,
  opts: ConsumerOptions,
  settings: Readonly<Options>,
): Partial<ConsumerConfig> {
  const { start } = opts;
  return {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(settings.ackWaitMs),
    max_ack_pending: settings.maxAckPending,
    ...(opts.sourceId === undefined
      ? {}
      : { filter_subject: `${settings.subjectPrefix}.${opts.sourceId}` }),
    ...deliverFrom(start),
  };
}

/** Where a server-side consumer starts. */
export function deliverFrom(start: StartAt): Partial<ConsumerConfig> {
  if (start === "oldest") return { deliver_policy: DeliverPolicy.All };
  if (start === "now") return { deliver_policy: DeliverPolicy.New };
  return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: parseSeq(start.after) + 1 };
}
