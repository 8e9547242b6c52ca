import { join } from "node:path";
import type { ConnectionConfig } from "../config/schema.ts";
import { readRecords } from "../log/file/reader.ts";
import type { LogPosition } from "../log/interface.ts";

export interface ConnectionStatus {
  id: string;
  source: string;
  destination: string;
  offset: LogPosition | null;
  /** With a log whose positions are not file offsets (NATS): whether the connection's consumer exists. */
  started?: boolean;
  /** Events of the connection's source not yet confirmed (counted up to `LAG_CAP`). */
  lagEvents: number;
  /** Age of the oldest unconfirmed event, in seconds (0 when caught up). */
  lagSeconds: number;
  deadLetters: number;
}

/** Lag counting stops here: past it the answer is "at least this many". */
export const LAG_CAP = 1_000_000;

const decoder = new TextDecoder();

/** How far a connection is behind the log, read from the segment files. */
export function connectionStatus(
  dataDir: string,
  connection: ConnectionConfig,
  offset: LogPosition | undefined,
  opts: { now?: number; cap?: number; deadLetters: number },
): ConnectionStatus {
  const now = opts.now ?? Date.now();
  const cap = opts.cap ?? LAG_CAP;
  const dir = join(dataDir, "log");
  let lagEvents = 0;
  let oldest: number | undefined;
  if (offset) {
    let from = offset;
    let scanned = 0;
    while (scanned < cap) {
      const page = readRecords(dir, from, Math.min(10_000, cap - scanned));
      if (page.length === 0) break;
      for (const r of page) {
        // A v3 frame names its source and time: no parse for those records.
        if (r.sourceId !== undefined) {
          if (r.sourceId !== connection.source) continue;
          lagEvents++;
          oldest ??= r.receivedAt ?? receivedAtOf(r.payload);
          continue;
        }
        const text = decoder.decode(r.payload);
        // Cheap pre-check before parsing: most records of other sources are skipped.
        if (!text.includes(`"sourceId":"${connection.source}"`)) continue;
        const e = JSON.parse(text) as { sourceId?: string; receivedAt?: string };
        if (e.sourceId !== connection.source) continue;
        lagEvents++;
        oldest ??= Date.parse(e.receivedAt ?? "");
      }
      scanned += page.length;
      from = page.at(-1)!.next;
    }
  }
  return {
    id: connection.id,
    source: connection.source,
    destination: connection.destination.type,
    offset: offset ?? null,
    lagEvents,
    lagSeconds:
      oldest === undefined || Number.isNaN(oldest) ? 0 : Math.max(0, (now - oldest) / 1000),
    deadLetters: opts.deadLetters,
  };
}

function receivedAtOf(payload: Uint8Array): number {
  const e = JSON.parse(decoder.decode(payload)) as { receivedAt?: string };
  return Date.parse(e.receivedAt ?? "");
}
