import type { Logger } from "pino";
import type { DedupKey, DedupStore } from "../dedup/interface.ts";
import { comparePositions, type EventLog } from "../log/interface.ts";

const BATCH = 10_000;

/**
 * Rebuilds the dedup keys of events appended after the dedup checkpoint. Keys are
 * recorded only after their events are durable, so after a crash the log may hold
 * events whose keys were lost, never the reverse; replaying the tail makes them agree.
 * Each key keeps its event's `receivedAt`, so it leaves the window when it would have.
 */
export async function replayDedupKeys(
  log: EventLog,
  dedup: DedupStore,
  logger: Logger,
): Promise<number> {
  const checkpoint = dedup.checkpoint();
  // A checkpoint past the end means the log was cut back (a corrupt tail): replay it all.
  let from = checkpoint && comparePositions(checkpoint, log.end()) <= 0 ? checkpoint : log.start();
  let count = 0;
  const decoder = new TextDecoder();
  for (;;) {
    const records = log.read(from, BATCH);
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
          const at = Date.parse(e.receivedAt ?? "");
          keys.push({ sourceId: e.sourceId, messageId: e.messageId, at: at || undefined });
        }
      } catch {
        logger.warn({ position: r.position }, "dedup replay: record is not an event; skipped");
      }
    }
    from = records.at(-1)!.next;
    dedup.remember(keys, from);
    count += keys.length;
    // A long tail (a first start after an upgrade replays the whole log) is written out
    // as it goes instead of piling up in memory.
    await dedup.backlog();
  }
  if (count > 0) logger.info({ keys: count }, "dedup keys rebuilt from the event log tail");
  return count;
}
