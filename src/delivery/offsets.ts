import type { Database } from "bun:sqlite";
import type { LogPosition } from "../log/interface.ts";
import type { OffsetStore } from "./interface.ts";

/**
 * Connection offsets in the state database; written after each confirmed batch. The
 * first offset of a connection is kept as its start too (`start_segment`,
 * `start_offset`: null for rows written before they existed), so that the inspector can
 * tell an event stored before a connection began (start `now`) from one it still owes.
 */
export class SqliteOffsetStore implements OffsetStore {
  private readonly select;
  private readonly selectStart;
  private readonly upsert;

  constructor(db: Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS connection_offsets (
      connection_id TEXT PRIMARY KEY, segment INTEGER NOT NULL, offset INTEGER NOT NULL,
      updated_at INTEGER NOT NULL, start_segment INTEGER, start_offset INTEGER) WITHOUT ROWID`);
    const columns = db
      .query<{ name: string }, []>("SELECT name FROM pragma_table_info('connection_offsets')")
      .all()
      .map((c) => c.name);
    // Each column on its own: the two ALTERs commit one by one, and a process killed
    // between them left a table with start_segment only (which then never opened).
    for (const column of ["start_segment", "start_offset"]) {
      if (!columns.includes(column)) {
        db.exec(`ALTER TABLE connection_offsets ADD COLUMN ${column} INTEGER`);
      }
    }
    this.select = db.query<{ segment: number; offset: number }, [string]>(
      "SELECT segment, offset FROM connection_offsets WHERE connection_id = ?",
    );
    this.selectStart = db.query<{ segment: number | null; offset: number | null }, [string]>(
      "SELECT start_segment AS segment, start_offset AS offset FROM connection_offsets " +
        "WHERE connection_id = ?",
    );
    this.upsert = db.query(
      "INSERT INTO connection_offsets " +
        "(connection_id, segment, offset, updated_at, start_segment, start_offset) " +
        "VALUES (?1, ?2, ?3, ?4, ?2, ?3) " +
        "ON CONFLICT(connection_id) DO UPDATE SET segment = excluded.segment, " +
        "offset = excluded.offset, updated_at = excluded.updated_at",
    );
  }

  startOf(connectionId: string): LogPosition | undefined {
    const row = this.selectStart.get(connectionId);
    if (!row || row.segment === null || row.offset === null) return undefined;
    return { segment: row.segment, offset: row.offset };
  }

  get(connectionId: string): LogPosition | undefined {
    const row = this.select.get(connectionId);
    return row ? { segment: row.segment, offset: row.offset } : undefined;
  }

  set(connectionId: string, position: LogPosition): void {
    this.upsert.run(connectionId, position.segment, position.offset, Date.now());
  }
}
