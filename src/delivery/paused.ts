import type { Database } from "bun:sqlite";

/** Which connections a person paused; kept across restarts (SPEC 8). */
export interface PauseStore {
  /** Paused connection ids. */
  paused(): Promise<Set<string>>;
  set(connectionId: string, paused: boolean): Promise<void>;
}

/** Paused connections in the state database, table `connection_paused`. */
export class SqlitePauseStore implements PauseStore {
  private readonly all;
  private readonly add;
  private readonly drop;

  constructor(db: Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS connection_paused (
      connection_id TEXT PRIMARY KEY, paused_at INTEGER NOT NULL) WITHOUT ROWID`);
    this.all = db.query<{ connection_id: string }, []>(
      "SELECT connection_id FROM connection_paused",
    );
    this.add = db.query(
      "INSERT INTO connection_paused (connection_id, paused_at) VALUES (?, ?) " +
        "ON CONFLICT(connection_id) DO NOTHING",
    );
    this.drop = db.query("DELETE FROM connection_paused WHERE connection_id = ?");
  }

  async paused(): Promise<Set<string>> {
    return new Set(this.all.all().map((r) => r.connection_id));
  }

  async set(connectionId: string, paused: boolean): Promise<void> {
    if (paused) this.add.run(connectionId, Date.now());
    else this.drop.run(connectionId);
  }
}
