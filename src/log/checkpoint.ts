import type { LogCursor } from "./stream.ts";

/**
 * A stored checkpoint (the dedup store's, in `dedup.db` or its checkpoint file) as a
 * cursor: a cursor string as stored since issue 14, or a file log position
 * `{ segment, offset }` stored before (the place just after the last recorded record,
 * which is the file log's cursor `<segment>:<offset>`). Anything else:
 * undefined (start-up then replays the whole log).
 */
export function checkpointCursor(stored: unknown): LogCursor | undefined {
  if (typeof stored === "string" && stored.length > 0) return stored;
  if (typeof stored !== "object" || stored === null) return undefined;
  const { segment, offset } = stored as { segment?: unknown; offset?: unknown };
  if (!Number.isInteger(segment) || !Number.isInteger(offset)) return undefined;
  return `${segment}:${offset}`;
}
