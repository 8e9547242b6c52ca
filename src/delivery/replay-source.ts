import { join } from "node:path";
import type { StoredEvent } from "../events/schema.ts";
import { type CorruptRecord, readRecords } from "../log/file/reader.ts";
import { listSegments } from "../log/file/segments.ts";
import type { LogPosition } from "../log/interface.ts";
import type { LogStream } from "../log/stream.ts";

/** A point between two stored events (the log's position just after an event). */
export type ReplayPosition = string;

/** One stored event of the replayed source. */
export interface ReplayRecord {
  receivedAt: number;
  /** The position just after it. */
  position: ReplayPosition;
  event(): StoredEvent;
}

/** The replayed source's records, in log order, from a start. */
export interface ReplaySource {
  read(max: number): Promise<{ records: ReplayRecord[]; end: boolean }>;
  close(): void;
}

/** Where reading starts: the oldest event, or just after a position. */
export type ReplayStart = "oldest" | { after: ReplayPosition };

const decoder = new TextDecoder();

/** `<segment>:<offset>`, the file log's position after a record. */
function positionText(p: LogPosition): ReplayPosition {
  return `${p.segment}:${p.offset}`;
}

/** A position as `<segment>:<offset>`, or undefined when it is not one. */
export function parsePosition(text: string): LogPosition | undefined {
  const m = /^(\d+):(\d+)$/.exec(text);
  return m ? { segment: Number(m[1]), offset: Number(m[2]) } : undefined;
}

/**
 * Reads one source's records from the embedded log's segment files (read-only, beside
 * a running server or not). A damaged record is skipped and reported to `onCorrupt`.
 */
export function fileReplaySource(
  dataDir: string,
  sourceId: string,
  start: ReplayStart,
  onCorrupt?: (corrupt: CorruptRecord) => void,
): ReplaySource {
  const dir = join(dataDir, "log");
  let from: LogPosition =
    start === "oldest"
      ? { segment: listSegments(dir)[0] ?? 0, offset: 0 }
      : (parsePosition(start.after) ?? { segment: 0, offset: 0 });
  return {
    async read(max) {
      const page = readRecords(dir, from, max, undefined, onCorrupt);
      const records: ReplayRecord[] = [];
      for (const r of page) {
        from = r.next;
        // A v3 frame names its source: other sources' records are not even decoded.
        if (r.sourceId !== undefined && r.sourceId !== sourceId) continue;
        const text = decoder.decode(r.payload);
        // Cheap pre-check before parsing: most records of other sources are skipped.
        if (!text.includes(`"sourceId":${JSON.stringify(sourceId)}`)) continue;
        const event = JSON.parse(text) as StoredEvent;
        if (event.sourceId !== sourceId) continue;
        records.push({
          receivedAt: Date.parse(event.receivedAt),
          position: positionText(r.next),
          event: () => event,
        });
      }
      return { records, end: page.length < max };
    },
    close() {},
  };
}

/**
 * Reads one source's records through the log's seam (a `LogReader` filtered to the
 * source: the server's replays, whatever the backend). A position is a record's cursor:
 * the point just after it (the file log's `<segment>:<offset>`).
 */
export async function streamReplaySource(
  log: LogStream,
  sourceId: string,
  start: ReplayStart,
): Promise<ReplaySource> {
  const reader = await log.reader({
    start: start === "oldest" ? "oldest" : { after: start.after },
    sourceId,
  });
  return {
    async read(max) {
      const page = await reader.read(max, 0);
      const records = page.map((r): ReplayRecord => {
        const event = JSON.parse(decoder.decode(r.payload)) as StoredEvent;
        // The event's own receivedAt: a range of times is one of receive times.
        return { receivedAt: Date.parse(event.receivedAt), position: r.cursor, event: () => event };
      });
      return { records, end: page.length < max };
    },
    close() {
      void reader.close();
    },
  };
}
