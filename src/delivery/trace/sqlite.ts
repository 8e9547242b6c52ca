import type { Database } from "bun:sqlite";
import type { Logger } from "pino";
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
  source_id: string;
  message_id: string;
  at: number;
  entry: string;
}

/** The delivery trace in the state database, table `delivery_trace`, pruned by count. */
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
    db.exec(`CREATE TABLE IF NOT EXISTS delivery_trace (
      id INTEGER PRIMARY KEY, source_id TEXT NOT NULL, message_id TEXT NOT NULL,
      connection_id TEXT NOT NULL, at INTEGER NOT NULL, entry TEXT NOT NULL)`);
    db.exec(
      "CREATE INDEX IF NOT EXISTS delivery_trace_by_event ON delivery_trace (source_id, message_id)",
    );
    const insert = db.query(
      "INSERT INTO delivery_trace (source_id, message_id, connection_id, at, entry) VALUES (?, ?, ?, ?, ?)",
    );
    this.insertMany = db.transaction((records: TraceRecord[]) => {
      for (const r of records) {
        insert.run(r.sourceId, r.messageId, r.connectionId, r.at, JSON.stringify(r.entry));
      }
    });
    this.select = db.query<Row, [string, string]>(
      "SELECT connection_id, source_id, message_id, at, entry FROM delivery_trace " +
        "WHERE source_id = ? AND message_id = ? ORDER BY id",
    );
    this.prune = db.query<unknown, [number]>(
      "DELETE FROM delivery_trace WHERE id <= (SELECT max(id) FROM delivery_trace) - ?",
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

  async forEvent(sourceId: string, messageId: string): Promise<TraceRecord[]> {
    return this.select.all(sourceId, messageId).map((r) => ({
      connectionId: r.connection_id,
      sourceId: r.source_id,
      messageId: r.message_id,
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
