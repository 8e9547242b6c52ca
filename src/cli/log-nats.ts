import {
  AckPolicy,
  type Consumer,
  DeliverPolicy,
  type FetchOptions,
  type JsMsg,
} from "@nats-io/jetstream";
import { type MsgHdrs, nanos } from "@nats-io/transport-node";
import { EVENT_TYPES } from "../events/schema.ts";
import { TYPE_HEADER } from "../log/nats/consumer.ts";
import type { NatsLogOptions } from "../log/nats/nats-log.ts";
import { NatsLogStream, natsMsgId } from "../log/nats/nats-log.ts";
import type { StartAt } from "../log/stream.ts";

export interface NatsTailOptions {
  nats: NatsLogOptions;
  fromStart: boolean;
  follow: boolean;
  source?: string;
  /** Events to show from the end when not from the start. */
  lines: number;
  write: (line: string) => void;
  /** Stops following when aborted. */
  signal?: AbortSignal;
}

const PAGE = 500;

/**
 * `sluice log tail` with `log.backend: nats`: the stream's events as NDJSON through a
 * reader of its own (an ephemeral consumer, deleted when done; it acks nothing, so
 * delivery is not touched). The last `lines` events start right before the stream's
 * end; with `--source` the source's events are read from the oldest and the last ones
 * kept (as the file log's tail does).
 */
export async function tailNatsLog(opts: NatsTailOptions): Promise<void> {
  const log = await NatsLogStream.open({ ...opts.nats, openWaitMs: 5_000 });
  try {
    if (!log.healthy()) throw new Error(`cannot read the event log: ${log.health().error}`);
    let start: StartAt = "oldest";
    if (!opts.fromStart && opts.source === undefined) {
      const { state } = await log.use().jsm.streams.info(opts.nats.stream);
      const after = state.last_seq - opts.lines;
      if (after >= state.first_seq) start = { after: String(after) };
    }
    const reader = await log.reader({ start, sourceId: opts.source });
    const decoder = new TextDecoder();
    try {
      const keepLast = !opts.fromStart && opts.source !== undefined;
      const last: string[] = [];
      for (;;) {
        const page = await reader.read(PAGE, 0);
        for (const r of page) {
          const text = decoder.decode(r.payload);
          if (!keepLast) opts.write(text);
          else {
            last.push(text);
            if (last.length > opts.lines) last.shift();
          }
        }
        if (page.length === 0) break;
      }
      for (const line of last) opts.write(line);
      while (opts.follow && !opts.signal?.aborted) {
        for (const r of await reader.read(PAGE, 1_000)) opts.write(decoder.decode(r.payload));
      }
    } finally {
      await reader.close();
    }
  } finally {
    await log.close();
  }
}

export interface NatsVerifyReport {
  stream: string;
  /** Messages looked at (those in the stream when the check began). */
  messages: number;
  bytes: number;
  problems: { seq: number; reason: string }[];
  /** Why not every message was checked (the server stopped giving them), or undefined. */
  incomplete?: string;
}

const EVENT_TYPE_SET = new Set<string>(EVENT_TYPES);
/** Empty fetches in a row, with messages still to check in the stream, before giving up. */
const EMPTY_FETCHES = 3;

export interface NatsVerifyHooks {
  /** How a page is fetched (tests: a server that gives nothing). */
  fetch?: (consumer: Consumer, opts: FetchOptions) => Promise<AsyncIterable<JsMsg>>;
}

/**
 * `sluice log verify` with `log.backend: nats`: reads every message the stream holds
 * when it starts (an ephemeral consumer that acks nothing: delivery is not touched) and
 * checks what sluice's readers rely on: the subject is `<prefix>.<sourceId>`, the
 * payload is a stored event (a JSON object with messageId, sourceId, a known type and
 * receivedAt) of that source, its `Nats-Msg-Id` is the one sluice gives it
 * (`natsMsgId`: a second copy of the event would otherwise not be caught by the
 * stream's duplicate window), and its `Sluice-Type` header is the event's type (what
 * readers filter by without parsing). JetStream checks its own storage (checksums,
 * `nats stream info`); this checks the records in it.
 */
export async function verifyNatsLog(
  nats: NatsLogOptions,
  hooks: NatsVerifyHooks = {},
): Promise<NatsVerifyReport> {
  const fetch = hooks.fetch ?? ((c: Consumer, o: FetchOptions) => c.fetch(o));
  const log = await NatsLogStream.open({ ...nats, openWaitMs: 5_000 });
  try {
    if (!log.healthy()) throw new Error(`cannot read the event log: ${log.health().error}`);
    const { jsm, js } = log.use();
    const { state } = await jsm.streams.info(nats.stream);
    const report: NatsVerifyReport = {
      stream: nats.stream,
      messages: 0,
      bytes: state.bytes,
      problems: [],
    };
    if (state.messages === 0) return report;
    const prefix = `${nats.subjectPrefix ?? "sluice.events"}.`;
    const name = `verify-${crypto.randomUUID()}`;
    await jsm.consumers.add(nats.stream, {
      name,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      inactive_threshold: nanos(60_000),
    });
    try {
      const consumer = await js.consumers.get(nats.stream, name);
      let done = false;
      let lastSeen = state.first_seq - 1;
      let empty = 0;
      while (!done) {
        const batch = await fetch(consumer, { max_messages: PAGE, expires: 5_000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          lastSeen = m.seq;
          report.messages++;
          const reason = checkMessage(m.subject, m.headers, m.data, prefix);
          if (reason) report.problems.push({ seq: m.seq, reason });
          // The last one there was at the start: a batch not full would wait for its expiry.
          if (m.seq >= state.last_seq || m.info.pending === 0) {
            done = true;
            break;
          }
        }
        if (got > 0) {
          empty = 0;
          continue;
        }
        // None came: the rest removed meanwhile (retention) ends the check; messages
        // still there after what was seen are asked again, then reported unchecked.
        const now = (await jsm.streams.info(nats.stream)).state;
        const from = Math.max(lastSeen + 1, now.first_seq);
        if (now.messages === 0 || from > state.last_seq) break;
        if (++empty >= EMPTY_FETCHES) {
          report.incomplete =
            `the server gave no messages after seq ${lastSeen} in ${EMPTY_FETCHES} fetches; ` +
            `seq ${from} to ${state.last_seq} not checked`;
          done = true;
        }
      }
    } finally {
      await jsm.consumers.delete(nats.stream, name).catch(() => false);
    }
    return report;
  } finally {
    await log.close();
  }
}

const decoder = new TextDecoder();

/** Why a message is not a record sluice's readers can use, or undefined when it is. */
export function checkMessage(
  subject: string,
  headers: MsgHdrs | undefined,
  data: Uint8Array,
  prefix: string,
): string | undefined {
  if (!subject.startsWith(prefix)) return `subject ${subject} is not under ${prefix}`;
  const source = subject.slice(prefix.length);
  if (!/^[A-Za-z0-9_.-]+$/.test(source)) return `subject ${subject} names no valid sourceId`;
  let event: unknown;
  try {
    event = JSON.parse(decoder.decode(data));
  } catch {
    return "payload is not JSON";
  }
  if (typeof event !== "object" || event === null || Array.isArray(event)) {
    return "payload is not a JSON object";
  }
  const e = event as Record<string, unknown>;
  if (typeof e.messageId !== "string" || e.messageId === "") return "payload has no messageId";
  if (typeof e.sourceId !== "string") return "payload has no sourceId";
  if (e.sourceId !== source) {
    return `sourceId ${JSON.stringify(e.sourceId)} does not match the subject's ${JSON.stringify(source)}`;
  }
  if (typeof e.type !== "string" || !EVENT_TYPE_SET.has(e.type)) {
    return `type ${JSON.stringify(e.type)} is not an event type`;
  }
  if (typeof e.receivedAt !== "string" || Number.isNaN(Date.parse(e.receivedAt))) {
    return "payload has no receivedAt time";
  }
  const msgId = headers?.get("Nats-Msg-Id") ?? "";
  const want = natsMsgId(e.sourceId, e.messageId);
  if (msgId !== want) {
    return msgId === ""
      ? `no Nats-Msg-Id header (want ${JSON.stringify(want)})`
      : `Nats-Msg-Id ${JSON.stringify(msgId)} does not match the messageId (want ${JSON.stringify(want)})`;
  }
  const type = headers?.get(TYPE_HEADER) ?? "";
  if (type !== e.type) {
    return type === ""
      ? `no ${TYPE_HEADER} header`
      : `${TYPE_HEADER} header ${JSON.stringify(type)} is not the event's type ${JSON.stringify(e.type)}`;
  }
  return undefined;
}
