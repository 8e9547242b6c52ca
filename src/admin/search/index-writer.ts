/**
 * Worker entry of the search index's writer thread: following the event log, parsing
 * each stored event, hashing its keys and inserting them into the index shards all
 * happen here, in the idle scheduling class, so that none of it takes time from the
 * event loop that answers requests (SPEC 11: the inspector costs ingest nothing when
 * nobody watches). The server tells it, after appends are durable, how far the log
 * goes; it reads the log's segment files itself, never past that point.
 *
 * A separate entry point: `bun build --compile` must list it (see package.json).
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { readRecords } from "../../log/file/reader.ts";
import { listSegments } from "../../log/file/segments.ts";
import type { LogPosition } from "../../log/interface.ts";
import { natsLogOptions } from "../../log/nats/options.ts";
import { idleThisThread } from "./idle-priority.ts";
import type { FromIndexWriter, ToIndexWriter } from "./index-thread.ts";
import { type IndexerLogger, SearchIndexer } from "./indexer.ts";
import { eventLogSource } from "./log-source.ts";
import { NatsSearchSource, type StreamIdentity } from "./nats-source.ts";
import { IndexShards } from "./shards.ts";
import { StoredTimes } from "./stored-times.ts";

/**
 * Appends whose durable time the thread keeps until it has indexed their records: at
 * most one per millisecond of appends, so minutes of lag (3 MB).
 */
const STORED_TIMES = 131_072;
/** How long a stop goes on indexing what the log holds past the index (a last catch-up). */
const STOP_INDEX_MS = 500;

/** Names the writer thread in the lines of its own NATS connection. */
const THREAD = "search index writer";

declare const self: Worker;

const post = (m: FromIndexWriter) => self.postMessage(m);

const relay: IndexerLogger & { warn: IndexerLogger["info"] } = {
  info: (fields, msg) => post({ t: "log", level: "info", msg, fields: plain(fields) }),
  warn: (fields, msg) => post({ t: "log", level: "warn", msg, fields: plain(fields) }),
  error: (fields, msg) => post({ t: "log", level: "error", msg, fields: plain(fields) }),
};

/** Fields that survive postMessage: an Error becomes its message. */
function plain(fields: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = v instanceof Error ? { message: v.message } : v;
  }
  return out;
}

let indexer: SearchIndexer | undefined;
let shards: IndexShards | undefined;

self.onmessage = (e: MessageEvent<ToIndexWriter>) => {
  const m = e.data;
  if (m.t !== "init") return;
  const started = m.log.kind === "file" ? followFile(m) : followNats(m);
  started.catch((err) =>
    post({ t: "failed", message: err instanceof Error ? err.message : String(err) }),
  );
};

type Init = Extract<ToIndexWriter, { t: "init" }>;

/**
 * The index shards. An index another log backend wrote (its cursor is not one of this
 * log's: `log.backend` changed over the same data dir) is deleted and made again from
 * this log: its positions and numbers mean nothing here.
 */
function openShards(m: Init, cursor: RegExp): IndexShards {
  const found = new IndexShards(m.indexDir, { shardEvents: m.shardEvents });
  const { next } = found.progress();
  if (next === undefined || cursor.test(next)) return found;
  found.close();
  rmSync(m.indexDir, { recursive: true, force: true });
  relay.info(
    { indexDir: m.indexDir },
    "search index was written for the other log backend: deleted, made again from this log",
  );
  return new IndexShards(m.indexDir, { shardEvents: m.shardEvents });
}

/** The file log: read from its segment files, up to the durable end the server tells. */
async function followFile(m: Init): Promise<void> {
  if (m.log.kind !== "file") return;
  const { logDir } = m.log;
  const priority = idleThisThread();
  let end: LogPosition = m.log.end;
  const times = new StoredTimes(m.log.end, STORED_TIMES);
  const listeners = new Set<() => void>();
  const log = {
    read: (from: LogPosition, max: number) => readRecords(logDir, from, max, end),
    start: (): LogPosition => ({
      segment: listSegments(logDir)[0] ?? end.segment,
      offset: 0,
    }),
    onAppend(listener: () => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  self.onmessage = (next: MessageEvent<ToIndexWriter>) => {
    const n = next.data;
    if (n.t === "end") {
      if (n.stored) times.receive(n.stored);
      end = n.end;
      for (const l of listeners) l();
    } else if (n.t === "stop") {
      void (async () => {
        await indexer?.stop();
        try {
          await indexer?.catchUp(STOP_INDEX_MS);
        } catch (err) {
          relay.error({ err }, "search index update failed at stop");
        }
        shards?.close();
        post({ t: "stopped" });
      })();
    }
  };
  shards = openShards(m, /^\d+:\d+$/);
  indexer = new SearchIndexer(shards, eventLogSource(log, times), {
    logger: relay,
    batch: m.batch,
    // The server already gathers appends (one message per delayMs at most).
    delayMs: 0,
    // In the idle class the kernel keeps it off a busy CPU: no share to enforce.
    maxShare: priority === "none" ? 0.25 : 1,
  });
  indexer.start();
  post({ t: "ready", priority });
}

/**
 * The NATS log: the thread opens the stream with a connection of its own and follows
 * it (every instance's events) with reads that wait, so neither the reading nor the
 * indexing takes time from the server's event loop.
 */
async function followNats(m: Init): Promise<void> {
  if (m.log.kind !== "nats") return;
  const priority = idleThisThread();
  // Its own connection: the server's serves ingest and delivery. Not ready (NATS away)
  // is no failure: the reads wait until it is there.
  // Its lines say whose they are: the server's own connection logs the same outages.
  const logger = {
    info: (fields: object, msg: string) => relay.info({ ...fields, thread: THREAD }, msg),
    warn: (fields: object, msg: string) => relay.warn({ ...fields, thread: THREAD }, msg),
    error: (fields: object, msg: string) => relay.error({ ...fields, thread: THREAD }, msg),
  };
  // Loaded here only: a thread indexing the file log never loads the NATS client.
  const { NatsLogStream } = await import("../../log/nats/nats-log.ts");
  const stream = await NatsLogStream.open(
    natsLogOptions(m.log.config, logger as unknown as Logger),
  );
  shards = openShards(m, /^\d+$/);
  const source = new NatsSearchSource(stream, {
    follow: true,
    identity: streamIdentity(m.indexDir, () => shards!),
  });
  self.onmessage = (next: MessageEvent<ToIndexWriter>) => {
    if (next.data.t !== "stop") return;
    void (async () => {
      // What it has not indexed is read again after a restart (the index's cursor is
      // the stream sequence it committed with its rows): no last catch-up needed.
      await source.close();
      await indexer?.stop();
      shards?.close();
      await stream.close().catch(() => undefined);
      post({ t: "stopped" });
    })();
  };
  indexer = new SearchIndexer(shards, source, {
    logger: relay,
    batch: m.batch,
    // Records that came in while a batch was written are read together.
    delayMs: 50,
    maxShare: priority === "none" ? 0.25 : 1,
  });
  indexer.start();
  post({ t: "ready", priority });
}

/** The file beside the shards that names the stream the index was written from. */
const IDENTITY_FILE = "nats-stream.json";

/**
 * Which stream (its `created` time) the index was written from, kept in the index
 * directory. A reset deletes the shards (searches' read-only views let go of them at
 * their next refresh) and names the new stream: the index is made again from its
 * first message.
 */
function streamIdentity(indexDir: string, shards: () => IndexShards): StreamIdentity {
  const file = join(indexDir, IDENTITY_FILE);
  let saved: string | undefined;
  try {
    const v = JSON.parse(readFileSync(file, "utf8")) as { created?: unknown };
    if (typeof v.created === "string") saved = v.created;
  } catch {}
  const save = (created: string) => {
    writeFileSync(file, `${JSON.stringify({ created })}\n`);
    saved = created;
  };
  return {
    saved: () => saved,
    save,
    reset(created, why) {
      shards().clear();
      save(created);
      relay.info({ indexDir, why }, "search index deleted, made again from the stream's start");
    },
  };
}
