import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { connect, headers, type NatsConnection, nanos } from "@nats-io/transport-node";
import { StorageUnavailableError } from "../../storage/unavailable.ts";
import type {
  AppendRecord,
  ConsumerOptions,
  LogConsumer,
  LogCursor,
  LogStream,
} from "../stream.ts";
import { NatsLogConsumer, parseSeq, TYPE_HEADER } from "./consumer.ts";

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
}

const DEFAULTS = {
  subjectPrefix: "sluice.events",
  replicas: 1,
  duplicateWindowMs: 2 * 60_000,
  ackWaitMs: 30_000,
  maxAckPending: 10_000,
  publishTimeoutMs: 5_000,
};

/**
 * The event log on NATS JetStream (SPEC 9): one stream with file storage, one subject per
 * source, each record one message with `Nats-Msg-Id: <sourceId>:<messageId>` and its type
 * in a header. `append` publishes a call's records together and resolves only once
 * every publish ack is in. JetStream acks before fsync unless the server runs
 * `sync_interval: always` (nats-server 2.10 and later; 2.9 lacks the option). Cursors
 * are stream sequences; consumers are durable pull consumers shared by every instance
 * that opens the same name (see `NatsLogConsumer`).
 */
export class NatsLogStream implements LogStream {
  private connected = true;
  private readonly consumers = new Set<NatsLogConsumer>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly opts: NatsLogOptions & typeof DEFAULTS,
  ) {
    void this.watchStatus();
  }

  /** Connects (reconnecting forever afterwards) and creates the stream if it is missing. */
  static async open(options: NatsLogOptions): Promise<NatsLogStream> {
    const opts = { ...DEFAULTS, ...options };
    const nc = await connect({
      servers: opts.servers,
      name: "sluice",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    try {
      const jsm = await jetstreamManager(nc);
      await ensureStream(jsm, opts);
      return new NatsLogStream(nc, jetstream(nc, { timeout: opts.publishTimeoutMs }), jsm, opts);
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  /** Throws StorageUnavailableError (503, never a 2xx) while NATS is unreachable or a publish fails. */
  async append(records: readonly AppendRecord[]): Promise<LogCursor[]> {
    if (records.length === 0) return [];
    // Fail fast while disconnected: the client would buffer and the request hang.
    if (!this.healthy()) throw new StorageUnavailableError("nats", "not connected");
    // Published back to back on one connection, so the server stores them in call order.
    const acks = records.map((r) => {
      const h = headers();
      h.set(TYPE_HEADER, r.type);
      return this.js.publish(`${this.opts.subjectPrefix}.${r.sourceId}`, r.payload, {
        headers: h,
        ...(r.messageId === undefined ? {} : { msgID: `${r.sourceId}:${r.messageId}` }),
      });
    });
    try {
      // A duplicate within the window acks with the first copy's sequence.
      return (await Promise.all(acks)).map((ack) => String(ack.seq));
    } catch (err) {
      throw new StorageUnavailableError("nats", (err as Error).message, { cause: err });
    }
  }

  healthy(): boolean {
    return this.connected && !this.nc.isClosed();
  }

  async consumer(name: string, opts: ConsumerOptions): Promise<LogConsumer> {
    const durable = consumerName(name);
    await this.ensureConsumer(durable, opts);
    const consumer = new NatsLogConsumer(
      name,
      this.nc,
      this.jsm,
      this.opts.stream,
      durable,
      this.opts.subjectPrefix,
    );
    this.consumers.add(consumer);
    return consumer;
  }

  async trimBefore(cursor: LogCursor): Promise<void> {
    await this.jsm.streams.purge(this.opts.stream, { seq: parseSeq(cursor) });
  }

  async close(): Promise<void> {
    for (const c of this.consumers) await c.close();
    this.consumers.clear();
    if (!this.nc.isClosed()) await this.nc.drain();
  }

  private async ensureConsumer(durable: string, opts: ConsumerOptions): Promise<void> {
    try {
      await this.jsm.consumers.info(this.opts.stream, durable);
      return;
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
    }
    const { start } = opts;
    const config: Partial<ConsumerConfig> = {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(this.opts.ackWaitMs),
      max_ack_pending: this.opts.maxAckPending,
      ...(opts.sourceId === undefined
        ? {}
        : { filter_subject: `${this.opts.subjectPrefix}.${opts.sourceId}` }),
      ...(start === "oldest"
        ? { deliver_policy: DeliverPolicy.All }
        : start === "now"
          ? { deliver_policy: DeliverPolicy.New }
          : {
              deliver_policy: DeliverPolicy.StartSequence,
              opt_start_seq: parseSeq(start.after) + 1,
            }),
    };
    // Two instances creating it at once: the server accepts the same config twice.
    await this.jsm.consumers.add(this.opts.stream, config);
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect" || s.type === "close") this.connected = false;
      else if (s.type === "reconnect") this.connected = true;
    }
  }
}

async function ensureStream(jsm: JetStreamManager, opts: NatsLogOptions & typeof DEFAULTS) {
  try {
    await jsm.streams.info(opts.stream);
    return;
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
  }
  const config = {
    name: opts.stream,
    subjects: [`${opts.subjectPrefix}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    num_replicas: opts.replicas,
    duplicate_window: nanos(opts.duplicateWindowMs),
  };
  try {
    await jsm.streams.add(config);
  } catch (err) {
    // Another instance created it meanwhile (same config: fine; different: its info says).
    await jsm.streams.info(opts.stream).catch(() => {
      throw err;
    });
  }
}

function isApiError(err: unknown, code: number): boolean {
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
