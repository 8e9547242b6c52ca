import type { Database } from "bun:sqlite";
import type { LogPosition } from "../log/interface.ts";
import type { OffsetStore } from "./interface.ts";

/** Connection offsets in the state database; written after each confirmed batch. */
export class SqliteOffsetStore implements OffsetStore {
  private readonly select;
  private readonly upsert;

  constructor(db: Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS connection_offsets (
      connection_id TEXT PRIMARY KEY, segment INTEGER NOT NULL, offset INTEGER NOT NULL,
      updated_at INTEGER NOT NULL) WITHOUT ROWID`);
    this.select = db.query<{ segment: number; offset: number }, [string]>(
      "SELECT segment, offset FROM connection_offsets WHERE connection_id = ?",
    );
    this.upsert = db.query(
      "INSERT INTO connection_offsets (connection_id, segment, offset, updated_at) VALUES (?, ?, ?, ?) " +
        "ON CONFLICT(connection_id) DO UPDATE SET segment = excluded.segment, " +
        "offset = excluded.offset, updated_at = excluded.updated_at",
    );
  }

  get(connectionId: string): LogPosition | undefined {
    const row = this.select.get(connectionId);
    return row ? { segment: row.segment, offset: row.offset } : undefined;
  }

  set(connectionId: string, position: LogPosition): void {
    this.upsert.run(connectionId, position.segment, position.offset, Date.now());
  }
}
