import type { Framed, FrameEntry } from "./file/record.ts";

/** A place in the event log: a segment number and a byte offset inside it. */
export interface LogPosition {
  segment: number;
  offset: number;
}

/** One stored record and where the next one starts. */
export interface LogRecord {
  position: LogPosition;
  next: LogPosition;
  payload: Uint8Array;
  /** From the record's frame (v3); undefined for records written before it (read the payload). */
  sourceId?: string;
  type?: string;
  /** When the event was received (ms), from a v3 frame that carries it. */
  receivedAt?: number;
}

/** One record to append: with its sourceId and type (a string payload is its JSON text), or bare bytes. */
export type LogEntry = FrameEntry | Uint8Array;

/**
 * The durable, append-only event log (SPEC 5). `append` resolves only once the
 * records are on disk (fdatasync): an acknowledged event must survive power loss.
 */
export interface EventLog {
  /** Appends records in order; resolves with the position after the last one, once durable. */
  append(records: readonly LogEntry[]): Promise<LogPosition>;
  /** Appends records framed by `encodeFrames` (whose sizes place each record before the end this resolves with). */
  appendFramed(framed: Framed): Promise<LogPosition>;
  /** The position after the last durable record. */
  end(): LogPosition;
  /** Records from `from` on, in order, up to `max` of them (only durable ones). */
  read(from: LogPosition, max: number): LogRecord[];
  /** The position of the first retained record. */
  start(): LogPosition;
  /** Whether appends currently succeed (false after an unrecoverable write error). */
  healthy(): boolean;
  /** Calls `listener` after each durable append (consumers wake up on it). Returns an unsubscribe. */
  onAppend(listener: () => void): () => void;
  /** Retained segments, oldest first (the last one is being written). */
  segments(): SegmentInfo[];
  /** Deletes a whole segment that is not the one being written (retention). */
  deleteSegment(segment: number): void;
  /** Waits for pending appends, then closes files. Further appends fail. */
  close(): Promise<void>;
}

export interface SegmentInfo {
  segment: number;
  bytes: number;
  /** When the segment was last written (ms since the epoch). */
  modifiedAt: number;
}

export function comparePositions(a: LogPosition, b: LogPosition): number {
  return a.segment - b.segment || a.offset - b.offset;
}
