import type { Logger } from "pino";
import type { EventLog, LogPosition } from "../interface.ts";

export interface FileRetentionInput {
  log: EventLog;
  /** Segments last written longer ago than this may go. */
  maxAgeMs: number;
  /** The oldest segments may go while the log is larger than this. */
  maxBytes: number;
  /** Positions that still need their segments: each consumer's offset, the dedup checkpoint. */
  readers: { id: string; position: LogPosition }[];
  logger?: Logger;
  now?: number;
  /** Called with the readers holding back a segment retention would delete. */
  onBehind?: (ids: string[]) => void;
}

/**
 * Deletes the oldest segments that retention allows (older than maxAgeMs, or while
 * the log is over maxBytes), but only those every reader has passed. A reader that
 * holds back such a segment is reported, never skipped. Returns the deleted segments
 * and their bytes.
 */
export function applyFileRetention(input: FileRetentionInput): {
  deleted: number[];
  bytes: number;
} {
  const { log, readers, logger } = input;
  const now = input.now ?? Date.now();
  const segments = log.segments();
  let total = segments.reduce((n, s) => n + s.bytes, 0);
  const deleted: number[] = [];
  let bytes = 0;
  for (const seg of segments.slice(0, -1)) {
    const tooOld = now - seg.modifiedAt > input.maxAgeMs;
    const tooBig = total > input.maxBytes;
    if (!tooOld && !tooBig) break;
    const holding = readers.filter((r) => r.position.segment <= seg.segment).map((r) => r.id);
    if (holding.length > 0) {
      logger?.warn(
        { segment: seg.segment, connections: holding },
        "retention: segment kept because a connection has not consumed it yet",
      );
      input.onBehind?.(holding);
      break;
    }
    log.deleteSegment(seg.segment);
    logger?.info({ segment: seg.segment, bytes: seg.bytes }, "retention: segment deleted");
    deleted.push(seg.segment);
    bytes += seg.bytes;
    total -= seg.bytes;
  }
  return { deleted, bytes };
}
