import type { Logger } from "pino";
import type { DedupKey, DedupStore } from "../dedup/interface.ts";
import type { LogStream } from "../log/stream.ts";

const BATCH = 10_000;

/**
 * Rebuilds the dedup keys of events appended after the dedup checkpoint. Keys are
 * recorded only after their events are durable, so after a crash the log may hold
 * events whose keys were lost, never the reverse; replaying the tail makes them agree.
 * Each key keeps its event's `receivedAt`, so it leaves the window when it would have.
 * A checkpoint the log no longer reaches (its tail was cut back) replays it all: the
 * stream's reader starts at the oldest record then.
 */
export async function replayDedupKeys(
  log: LogStream,
  dedup: DedupStore,
  logger: Logger,
): Promise<number> {
  const checkpoint = dedup.checkpoint();
  const reader = await log.reader({ start: checkpoint ? { after: checkpoint } : "oldest" });
  let count = 0;
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const records = await reader.read(BATCH);
      if (records.length === 0) break;
      const keys: DedupKey[] = [];
      for (const r of records) {
        try {
          const e = JSON.parse(decoder.decode(r.payload)) as {
            sourceId?: string;
            messageId?: string;
            receivedAt?: string;
          };
          if (e.sourceId && e.messageId) {
            const at = r.receivedAt ?? Date.parse(e.receivedAt ?? "");
            keys.push({ sourceId: e.sourceId, messageId: e.messageId, at: at || undefined });
          }
        } catch {
          logger.warn({ cursor: r.cursor }, "dedup replay: record is not an event; skipped");
        }
      }
      dedup.remember(keys, records.at(-1)!.cursor);
      count += keys.length;
      // A long tail (a first start after an upgrade replays the whole log) is written out
      // as it goes instead of piling up in memory.
      await dedup.backlog();
    }
  } finally {
    await reader.close();
  }
  if (count > 0) logger.info({ keys: count }, "dedup keys rebuilt from the event log tail");
  return count;
}
