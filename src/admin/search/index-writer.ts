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
import { readRecords } from "../../log/file/reader.ts";
import { listSegments } from "../../log/file/segments.ts";
import type { LogPosition } from "../../log/interface.ts";
import { idleThisThread } from "./idle-priority.ts";
import type { FromIndexWriter, ToIndexWriter } from "./index-thread.ts";
import { type IndexerLogger, SearchIndexer } from "./indexer.ts";
import { eventLogSource } from "./log-source.ts";
import { IndexShards } from "./shards.ts";
import { StoredTimes } from "./stored-times.ts";

/**
 * Appends whose durable time the thread keeps until it has indexed their records: at
 * most one per millisecond of appends, so minutes of lag (3 MB).
 */
const STORED_TIMES = 131_072;
/** How long a stop goes on indexing what the log holds past the index (a last catch-up). */
const STOP_INDEX_MS = 500;

declare const self: Worker;

const post = (m: FromIndexWriter) => self.postMessage(m);

const relay: IndexerLogger = {
  info: (fields, msg) => post({ t: "log", level: "info", msg, fields: plain(fields) }),
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
  if (m.t === "init") {
    try {
      const priority = idleThisThread();
      let end: LogPosition = m.end;
      const times = new StoredTimes(m.end, STORED_TIMES);
      const listeners = new Set<() => void>();
      const log = {
        read: (from: LogPosition, max: number) => readRecords(m.logDir, from, max, end),
        start: (): LogPosition => ({
          segment: listSegments(m.logDir)[0] ?? end.segment,
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
          try {
            indexer?.catchUp(STOP_INDEX_MS);
          } catch (err) {
            relay.error({ err }, "search index update failed at stop");
          }
          indexer?.stop();
          shards?.close();
          post({ t: "stopped" });
        }
      };
      shards = new IndexShards(m.indexDir, { shardEvents: m.shardEvents });
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
    } catch (err) {
      post({ t: "failed", message: err instanceof Error ? err.message : String(err) });
    }
  }
};
