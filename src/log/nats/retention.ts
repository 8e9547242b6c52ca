import {
  AckPolicy,
  type ConsumerInfo,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  type MsgRequest,
  type StoredMsg,
} from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { LogRetentionPolicy, RetentionResult } from "../stream.ts";
import { consumerName, isApiError } from "./nats-log.ts";

/** Sequences looked at past a missing one (a message deleted by hand) before giving up on it. */
const GAP_PROBES = 16;
/** Deletes in flight at once when messages go one by one. */
const DELETE_CONCURRENCY = 64;

export interface StreamRetentionOptions {
  logger?: Logger;
  /**
   * Whether the server's purge keeps consumers' unacked messages at or above the cut
   * (nats-server 2.9.15 on, nats-io/nats-server#3892; see `purgeKeepsPending`). When not,
   * messages are deleted one by one instead (`STREAM.MSG.DELETE`, which leaves every
   * consumer's pending alone): a purge on 2.9.10 forgets every message a consumer has
   * read and not acked, so one given back (an instance stopping, `-NAK`) or never acked
   * (an instance dying) would not be delivered again.
   */
  purgeKeepsPending: boolean;
  /** At most this many one-by-one deletes per pass (the next pass goes on). */
  maxDeletes?: number;
}

/** Whether a server of this version keeps unacked messages above a purge's cut pending (2.9.15 on). */
export function purgeKeepsPending(version: string | undefined): boolean {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version ?? "");
  if (!m) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return major > 2 || (major === 2 && (minor > 9 || (minor === 9 && patch >= 15)));
}

/**
 * One retention pass over the stream (SPEC 5 with `log.backend: nats`): removes the
 * oldest messages that are older than `maxAgeMs` or beyond `maxBytes`, but never one a
 * durable consumer has not acked. It removes everything below one sequence (a purge
 * with `seq`, or one-by-one deletes where the server's purge would forget consumers'
 * unacked messages: see `StreamRetentionOptions`), found so:
 *
 * - by age: the first message not too old, by binary search over the stream
 *   (`STREAM.MSG.GET`, about log2(messages) lookups; only when `first_ts` is too old);
 * - by size: as many of the oldest messages as the excess holds at the stream's average
 *   stored size (`bytes / messages`: approximate, the next pass corrects it);
 * - at most the first message every durable consumer of the stream with explicit
 *   acks has not acked (the first one after its ack floor that its filter matches; one
 *   with nothing pending and nothing unacked: the last sequence + 1, so a quiet
 *   source's connection holds nothing back), and the first after each reader's cursor.
 *
 * Every consumer counts, not only the connections named in the policy: instances may
 * run different configs for a while (a rolling deploy adds a connection), and one's
 * consumer must not lose records because another does not know it. A consumer no
 * connection names (its connection was removed) that holds records back is reported
 * by its server-side name with how to delete it. A pass that cannot be sure it knows
 * every consumer (a cluster's reply naming consumers whose leader did not answer, an
 * info that fails) cuts nothing and rejects with ConsumersUnknownError.
 *
 * Safe from several instances at once: the stream's state is read before the
 * consumers' (a message stored after it is above its last sequence and never cut), ack
 * floors only move up, and a purge below the stream's first sequence or a delete of a
 * message already gone does nothing. So a cut computed from floors read a moment ago
 * is never past a floor now; two instances passing together each remove only what
 * every consumer had acked (one-by-one deletes may then be asked twice: wasted, not
 * wrong).
 */
export async function retainStream(
  jsm: JetStreamManager,
  stream: string,
  policy: LogRetentionPolicy,
  opts: StreamRetentionOptions,
): Promise<RetentionResult> {
  const { logger } = opts;
  const now = policy.now ?? Date.now();
  // The stream first, then the consumers (see above).
  const { state } = await jsm.streams.info(stream);
  const first = state.first_seq;
  const last = state.last_seq;
  if (state.messages === 0) return { records: 0, holding: [] };

  // What the policy would cut: everything below `cut`.
  let cut = first;
  const cutoff = now - policy.maxAgeMs;
  if (Date.parse(state.first_ts) < cutoff) {
    cut = await firstNotBefore(jsm, stream, first, last, cutoff);
  }
  if (state.bytes > policy.maxBytes) {
    const average = state.bytes / state.messages;
    const over = Math.ceil((state.bytes - policy.maxBytes) / average);
    cut = Math.max(cut, Math.min(last + 1, first + over));
  }
  if (cut <= first) return { records: 0, holding: [] };

  // Where each reader needs the stream kept from.
  const named = new Map(policy.consumers.map((name) => [consumerName(name), name]));
  const keepFrom: { id: string; seq: number; known: boolean }[] = [];
  for (const info of await consumerInfos(jsm, stream)) {
    if (info.config.ack_policy === AckPolicy.None) continue; // a LogReader holds nothing
    const seq =
      info.num_pending === 0 && info.num_ack_pending === 0
        ? last + 1
        : await firstUnacked(jsm, stream, info.ack_floor.stream_seq, info.config.filter_subject);
    const connection = named.get(info.name);
    keepFrom.push({ id: connection ?? info.name, seq, known: connection !== undefined });
  }
  for (const r of policy.readers ?? []) {
    if (/^\d+$/.test(r.cursor)) keepFrom.push({ id: r.id, seq: Number(r.cursor) + 1, known: true });
  }

  const holders = keepFrom.filter((k) => k.seq < cut);
  const target = Math.min(cut, ...holders.map((k) => k.seq));
  const holding = holders.map((k) => k.id).sort();
  if (holders.length > 0) {
    const unknown = holders.filter((k) => !k.known).map((k) => k.id);
    logger?.warn(
      {
        stream,
        keptFrom: target,
        wouldCutTo: cut,
        connections: holders.filter((k) => k.known).map((k) => k.id),
        ...(unknown.length > 0 ? { otherConsumers: unknown } : {}),
      },
      "retention: records kept because a connection has not consumed them yet" +
        (unknown.length > 0
          ? ` (consumers no configured connection names: ${unknown.join(", ")}; if their connection was removed, delete them: nats consumer rm ${stream} <name>)`
          : ""),
    );
  }
  if (target <= first) return { records: 0, holding };
  if (opts.purgeKeepsPending) {
    const { purged } = await jsm.streams.purge(stream, { seq: target });
    if (purged > 0) {
      logger?.info({ stream, below: target, records: purged }, "retention: records purged");
    }
    return { records: purged, holding };
  }
  const end = Math.min(target, first + (opts.maxDeletes ?? 50_000));
  const deleted = await deleteRange(jsm, stream, first, end);
  if (deleted > 0) {
    logger?.info(
      { stream, below: end, records: deleted, ...(end < target ? { next: target } : {}) },
      "retention: records deleted",
    );
  }
  return { records: deleted, holding };
}

/** A retention pass given up on: the stream's consumers could not all be known (nothing was cut). */
export class ConsumersUnknownError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConsumersUnknownError";
  }
}

/** CONSUMER.NAMES's reply (`missing`: consumers in a cluster whose leader did not answer; `offline`: newer servers). */
interface ConsumerNamesReply {
  total?: number;
  offset?: number;
  limit?: number;
  consumers?: string[] | null;
  missing?: string[] | null;
  offline?: Record<string, string> | string[] | null;
}

type RawRequest = (subject: string, data?: unknown) => Promise<unknown>;

/** The API request the client's managers make (it throws JetStreamApiError for an error reply). */
function rawRequest(jsm: JetStreamManager): { request: RawRequest; prefix: string } {
  const api = jsm as unknown as {
    _request: (subject: string, data?: unknown) => Promise<unknown>;
    prefix: string;
  };
  return { request: (subject, data) => api._request(subject, data ?? null), prefix: api.prefix };
}

/** Every consumer name of the stream, page by page; throws when the server says it could not list them all. */
async function consumerNames(
  jsm: JetStreamManager,
  stream: string,
): Promise<{ names: string[]; pages: number }> {
  const { request, prefix } = rawRequest(jsm);
  const names: string[] = [];
  let total: number | undefined;
  for (let pages = 1; ; pages++) {
    const reply = (await request(`${prefix}.CONSUMER.NAMES.${stream}`, {
      offset: names.length,
    })) as ConsumerNamesReply;
    const missing = [
      ...(reply.missing ?? []),
      ...(Array.isArray(reply.offline) ? reply.offline : Object.keys(reply.offline ?? {})),
    ];
    if (missing.length > 0) {
      throw new ConsumersUnknownError(
        `retention pass skipped: consumers of stream ${stream} did not answer (${missing.join(", ")})`,
      );
    }
    const page = reply.consumers ?? [];
    if (total !== undefined && reply.total !== total) {
      throw new ConsumersUnknownError(
        `retention pass skipped: the consumers of stream ${stream} changed while listed`,
      );
    }
    total = reply.total ?? 0;
    names.push(...page);
    if (page.length === 0 || names.length >= total) return { names, pages };
  }
}

/**
 * Each consumer's info, or ConsumersUnknownError (and the pass cuts nothing) where one
 * might be left out: a cluster's reply naming consumers whose leader did not answer
 * (the client's lister drops that), a consumer's info failing for any reason but its
 * being gone, or (more than one page of names) the names changing while paged by
 * offset, which could skip one.
 */
async function consumerInfos(jsm: JetStreamManager, stream: string): Promise<ConsumerInfo[]> {
  const { names, pages } = await consumerNames(jsm, stream);
  const infos: ConsumerInfo[] = [];
  for (const name of names) {
    try {
      infos.push(await jsm.consumers.info(stream, name));
    } catch (err) {
      if (isApiError(err, JetStreamApiCodes.ConsumerNotFound)) continue; // deleted meanwhile
      throw new ConsumersUnknownError(
        `retention pass skipped: consumer ${name} of stream ${stream} could not be asked`,
        { cause: err },
      );
    }
  }
  // Paged: a consumer deleted between pages moves a later one onto a page already read.
  if (pages > 1) {
    const again = new Set((await consumerNames(jsm, stream)).names);
    if (names.length !== again.size || names.some((n) => !again.has(n))) {
      throw new ConsumersUnknownError(
        `retention pass skipped: the consumers of stream ${stream} changed while listed`,
      );
    }
  }
  return infos;
}

/**
 * Deletes the messages `[from, to)` one by one, oldest first, a few at a time; one
 * already gone (another instance's pass) counts nothing. Resolves once every delete
 * is answered, so what is below `to` is gone when it does.
 */
export async function deleteRange(
  jsm: JetStreamManager,
  stream: string,
  from: number,
  to: number,
): Promise<number> {
  if (to <= from) return 0;
  let next = from;
  let deleted = 0;
  const worker = async () => {
    while (next < to) {
      const seq = next++;
      try {
        // no_erase: the data is dropped, not overwritten first.
        if (await jsm.streams.deleteMessage(stream, seq, false)) deleted++;
      } catch (err) {
        // Gone already: 10057 "no message found" below the first sequence, 10043
        // "sequence N not found" for one deleted after it (in a block's delete map).
        if (!isApiError(err, SEQUENCE_NOT_FOUND) && !isGone(err)) throw err;
      }
    }
  };
  const workers = Array.from({ length: Math.min(DELETE_CONCURRENCY, to - from) }, worker);
  const results = await Promise.allSettled(workers);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return deleted;
}

/**
 * The first message a consumer with records to go still needs: the first after its ack
 * floor that its filter matches (a connection of a quiet source has its floor at its
 * last own record, perhaps far back; the others' records after it are not its to hold).
 */
async function firstUnacked(
  jsm: JetStreamManager,
  stream: string,
  floor: number,
  filter: string | undefined,
): Promise<number> {
  if (!filter) return floor + 1;
  // `next_by_subj` on STREAM.MSG.GET (nats-server 2.9 has it; the client types it for
  // direct gets only).
  const request = { seq: floor + 1, next_by_subj: filter } as MsgRequest;
  const m = await jsm.streams.getMessage(stream, request);
  // None (deleted meanwhile?): from the floor, to be sure.
  return m ? m.seq : floor + 1;
}

/**
 * The first sequence in `(first, last + 1]` whose message was stored at or after
 * `cutoff` (`last + 1`: none was), `first`'s being before it. Store times only grow
 * along the stream.
 */
async function firstNotBefore(
  jsm: JetStreamManager,
  stream: string,
  first: number,
  last: number,
  cutoff: number,
): Promise<number> {
  let lo = first; // stored before the cutoff
  let hi = last + 1; // at or after it (or the end)
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const m = await messageFrom(jsm, stream, mid, hi);
    // None between mid and hi: cutting at mid removes the same messages as at hi.
    if (!m) hi = mid;
    else if (m.time.getTime() < cutoff) lo = m.seq;
    else hi = mid;
  }
  return hi;
}

/** The first message at `seq` or a little after it (below `end`); null when there is none. */
async function messageFrom(
  jsm: JetStreamManager,
  stream: string,
  seq: number,
  end: number,
): Promise<StoredMsg | null> {
  for (let s = seq; s < end && s < seq + GAP_PROBES; s++) {
    const m = await jsm.streams.getMessage(stream, { seq: s });
    if (m) return m;
  }
  return null;
}

/** STREAM.MSG.DELETE of a sequence already deleted (the client's codes do not name it). */
const SEQUENCE_NOT_FOUND = 10043;

/** A delete's "no message found" (10057 on 2.9; 10037 is the name the client's codes have). */
function isGone(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.NoMessageFound || /no message found/i.test(err.message))
  );
}
