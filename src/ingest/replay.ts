import type { Logger } from "pino";
import type { DedupStore } from "../dedup/interface.ts";
import { comparePositions, type EventLog } from "../log/interface.ts";

const BATCH = 10_000;

/**
 * Rebuilds the dedup keys of events appended after the dedup checkpoint. Keys are
 * recorded only after their events are durable, so after a crash the log may hold
 * events whose keys were lost, never the reverse; replaying the tail makes them agree.
 */
export function replayDedupKeys(log: EventLog, dedup: DedupStore, logger: Logger): number {
  const checkpoint = dedup.checkpoint();
  // A checkpoint past the end means the log was cut back (a corrupt tail): replay it all.
  let from = checkpoint && comparePositions(checkpoint, log.end()) <= 0 ? checkpoint : log.start();
  let count = 0;
  const decoder = new TextDecoder();
  for (;;) {
    const records = log.read(from, BATCH);
    if (records.length === 0) break;
    const keys = [];
    let newest = 0;
    for (const r of records) {
      try {
        const e = JSON.parse(decoder.decode(r.payload)) as {
          sourceId?: string;
          messageId?: string;
          receivedAt?: string;
        };
        if (e.sourceId && e.messageId) keys.push({ sourceId: e.sourceId, messageId: e.messageId });
        newest = Math.max(newest, Date.parse(e.receivedAt ?? "") || 0);
      } catch {
        logger.warn({ position: r.position }, "dedup replay: record is not an event; skipped");
      }
    }
    from = records.at(-1)!.next;
    dedup.remember(keys, from, newest || undefined);
    count += keys.length;
  }
  if (count > 0) logger.info({ keys: count }, "dedup keys rebuilt from the event log tail");
  return count;
}
