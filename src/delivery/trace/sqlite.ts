import type { Database } from "bun:sqlite";
import type { Logger } from "pino";
import type { EventOrigin } from "../dead-letters/interface.ts";
import type { DeliveryTrace, TraceEntry, TraceRecord } from "./interface.ts";

export interface SqliteTraceOptions {
  logger: Logger;
  /** Records kept; older ones are deleted (default 200,000, about 30 MB). */
  maxRecords?: number;
  /** How often the oldest records are cut back to `maxRecords`. */
  pruneIntervalMs?: number;
}

interface Row {
  connection_id: string;
  at: number;
  entry: string;
}

/** 53 bits of a hash of the event's identity: exact in a JS number and in SQLite. */
function eventKey(sourceId: string, messageId: string): number {
  return Number(Bun.hash.wyhash(`${sourceId}\u0000${messageId}`) & 0x1f_ffff_ffff_ffffn);
}

/**
 * The delivery trace in the state database, table `event_trace`, pruned by count.
 * Records are keyed on (receivedAt, a hash of source and messageId): delivery writes
 * them in about receivedAt order, so the index grows at its right edge, about ten
 * times cheaper than an index on the messageId text, whose inserts land all over it.
 */
export class SqliteDeliveryTrace implements DeliveryTrace {
  private readonly insertMany;
  private readonly select;
  private readonly prune;
  private readonly timer: ReturnType<typeof setInterval>;
  private failing = false;

  constructor(
    db: Database,
    private readonly opts: SqliteTraceOptions,
  ) {
    // The first layout (keyed on the messageId text), if an earlier build made it.
    db.exec("DROP TABLE IF EXISTS delivery_trace");
    db.exec(`CREATE TABLE IF NOT EXISTS event_trace (
      id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, event_key INTEGER NOT NULL,
      connection_id TEXT NOT NULL, at INTEGER NOT NULL, entry TEXT NOT NULL)`);
    db.exec(
      "CREATE INDEX IF NOT EXISTS event_trace_by_event ON event_trace (received_at, event_key)",
    );
    const insert = db.query(
      "INSERT INTO event_trace (received_at, event_key, connection_id, at, entry) VALUES (?, ?, ?, ?, ?)",
    );
    this.insertMany = db.transaction((records: TraceRecord[]) => {
      for (const r of records) {
        insert.run(
          r.receivedAt,
          eventKey(r.sourceId, r.messageId),
          r.connectionId,
          r.at,
          JSON.stringify(r.entry),
        );
      }
    });
    this.select = db.query<Row, [number, number]>(
      "SELECT connection_id, at, entry FROM event_trace " +
        "WHERE received_at = ? AND event_key = ? ORDER BY id",
    );
    this.prune = db.query<unknown, [number]>(
      "DELETE FROM event_trace WHERE id <= (SELECT max(id) FROM event_trace) - ?",
    );
    this.timer = setInterval(() => this.cut(), opts.pruneIntervalMs ?? 30_000);
    this.timer.unref?.();
  }

  record(records: TraceRecord[]): void {
    if (records.length === 0) return;
    try {
      this.insertMany(records);
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.opts.logger.error({ err }, "delivery trace could not be written");
      this.failing = true;
    }
  }

  async forEvent(event: EventOrigin): Promise<TraceRecord[]> {
    const key = eventKey(event.sourceId, event.messageId);
    return this.select.all(event.receivedAt, key).map((r) => ({
      connectionId: r.connection_id,
      sourceId: event.sourceId,
      messageId: event.messageId,
      receivedAt: event.receivedAt,
      at: r.at,
      entry: JSON.parse(r.entry) as TraceEntry,
    }));
  }

  /** Deletes all but the newest `maxRecords` records. */
  cut(): void {
    try {
      this.prune.run(this.opts.maxRecords ?? 200_000);
    } catch (err) {
      this.opts.logger.error({ err }, "delivery trace could not be pruned");
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
