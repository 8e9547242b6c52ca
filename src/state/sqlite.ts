import { Database } from "bun:sqlite";
import { join } from "node:path";

/**
 * Opens the embedded state database `<dataDir>/state.db` (WAL mode). Rate-limit
 * buckets, connection offsets and the function store live here (dedup keys: dedup.db).
 */
export function openStateDb(dataDir: string): Database {
  const db = new Database(join(dataDir, "state.db"), { create: true, strict: true });
  db.exec("PRAGMA journal_mode = WAL");
  // NORMAL is safe here: the event log is the source of truth, and whatever state
  // a power loss takes back is rebuilt from the log tail on start.
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA busy_timeout = 5000");
  db.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
  return db;
}

export function getMeta(db: Database, key: string): string | undefined {
  const row = db
    .query<{ value: string }, [string]>("SELECT value FROM meta WHERE key = ?")
    .get(key);
  return row?.value;
}

export function setMeta(db: Database, key: string, value: string): void {
  db.query(
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
  ).run(key, value);
}
