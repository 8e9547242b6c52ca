import type { Logger } from "pino";
import type { EventLogConfig } from "../config/schema.ts";
import type { EventLog, LogPosition } from "../log/interface.ts";

export interface RetentionInput {
  log: EventLog;
  retention: EventLogConfig["retention"];
  /** Positions that still need their segments: each consumer's offset, the dedup checkpoint. */
  readers: { id: string; position: LogPosition }[];
  logger: Logger;
  now?: number;
  /** Called with the connections holding back a segment retention would delete. */
  onBehind?: (connectionIds: string[]) => void;
}

/**
 * Deletes the oldest segments that retention allows (older than maxAgeHours, or while
 * the log is over maxBytes), but only those every reader has passed. A reader that
 * holds back such a segment is reported, never skipped.
 */
export function applyRetention(input: RetentionInput): number[] {
  const { log, retention, readers, logger } = input;
  const now = input.now ?? Date.now();
  const segments = log.segments();
  let total = segments.reduce((n, s) => n + s.bytes, 0);
  const deleted: number[] = [];
  for (const seg of segments.slice(0, -1)) {
    const tooOld = now - seg.modifiedAt > retention.maxAgeHours * 3_600_000;
    const tooBig = total > retention.maxBytes;
    if (!tooOld && !tooBig) break;
    const holding = readers.filter((r) => r.position.segment <= seg.segment).map((r) => r.id);
    if (holding.length > 0) {
      logger.warn(
        { segment: seg.segment, connections: holding },
        "retention: segment kept because a connection has not consumed it yet",
      );
      input.onBehind?.(holding);
      break;
    }
    log.deleteSegment(seg.segment);
    logger.info({ segment: seg.segment, bytes: seg.bytes }, "retention: segment deleted");
    deleted.push(seg.segment);
    total -= seg.bytes;
  }
  return deleted;
}
