import { Database } from "bun:sqlite";

/**
 * The dedup store's SQLite file, `<dataDir>/dedup.db`, apart from state.db so that its
 * WAL, cache and checkpoints are its own: a run of keys written there never stalls a
 * rate-limit or offset write, and the writer thread checkpoints it off the request path.
 *
 * - `keys_<slice>`: one table per slice of the window (an hour of 24 h), dropped whole
 *   when the slice leaves the window. Rows are keyed (slot, hash, source, message): each
 *   run of keys is appended in key order at the end of the table, once, as a sorted
 *   immutable run, so writing a key costs one sequential row whatever the window holds.
 * - `hashes_<slice>`: per run of the slice, its key hashes in order (8 bytes each, one
 *   blob): what a restart after a crash re-reads for the runs its filter copies do not
 *   cover, a tenth of the bytes of the keys themselves. Dropped with `keys_<slice>`.
 * - `runs`: one row per run written (its slot, slice and key count).
 * - `filter`: where stores before `<dataDir>/dedup-filter/` (filter-file.ts) kept the
 *   latest copy of each filter segment and the last slot it covers. Loaded when a
 *   segment has no usable file, and each row deleted once its file is written.
 * - `meta`: the hash secret, the slot geometry, the log checkpoint and the generation
 *   the filter files must carry (a new one whenever the keys are discarded).
 */
export const SCHEMA_VERSION = "2";

export function openDedupDb(path: string, role: "reader" | "writer"): Database {
  const db = new Database(path, { create: true, strict: true });
  db.exec("PRAGMA busy_timeout = 10000");
  db.exec("PRAGMA journal_mode = WAL");
  if (role === "writer") {
    // The event log is the source of truth and replays what a power loss takes back,
    // so commits need no fsync; checkpoints (in this thread) still do.
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA cache_size = -16384");
    db.exec("PRAGMA journal_size_limit = 67108864");
  } else {
    db.exec("PRAGMA cache_size = -16384");
  }
  return db;
}

export function createTables(db: Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS runs (
      slot INTEGER PRIMARY KEY, slice INTEGER NOT NULL, keys INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS filter (
      seg INTEGER PRIMARY KEY, buckets INTEGER NOT NULL, covered INTEGER NOT NULL,
      entries BLOB NOT NULL, stash BLOB)`);
}

export function keysTable(slice: number): string {
  return `keys_${slice}`;
}

export function hashesTable(slice: number): string {
  return `hashes_${slice}`;
}

export function createKeysTable(db: Database, slice: number): void {
  db.exec(`CREATE TABLE IF NOT EXISTS ${keysTable(slice)} (
    slot INTEGER NOT NULL, h INTEGER NOT NULL, source TEXT NOT NULL, message TEXT NOT NULL,
    at INTEGER NOT NULL, PRIMARY KEY (slot, h, source, message)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS ${hashesTable(slice)} (slot INTEGER PRIMARY KEY, h BLOB NOT NULL)`);
}

/** Drops a slice's tables (expiry, or keys discarded). */
export function dropSliceTables(db: Database, slice: number): void {
  db.exec(`DROP TABLE IF EXISTS ${keysTable(slice)}; DROP TABLE IF EXISTS ${hashesTable(slice)}`);
}

/** The slices that have a hashes table (stores written before it have none). */
export function hashesTables(db: Database): Set<number> {
  return new Set(
    db
      .query<{ name: string }, []>(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name GLOB 'hashes_[0-9]*'",
      )
      .all()
      .map((r) => Number(r.name.slice("hashes_".length))),
  );
}

/** The slices that have a keys table, oldest first. */
export function keysTables(db: Database): number[] {
  return db
    .query<{ name: string }, []>(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name GLOB 'keys_[0-9]*'",
    )
    .all()
    .map((r) => Number(r.name.slice("keys_".length)))
    .sort((a, b) => a - b);
}

export function getMeta(db: Database, key: string): string | undefined {
  return db.query<{ value: string }, [string]>("SELECT value FROM meta WHERE key = ?").get(key)
    ?.value;
}

export function setMeta(db: Database, key: string, value: string): void {
  db.query(
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
  ).run(key, value);
}

/**
 * A messageId as stored in a TEXT column. SQLite keeps text as UTF-8, which cannot hold a
 * lone surrogate ("\ud800" would come back as "\ufffd", another id): such an id, and any
 * id that starts with NUL, is stored as NUL + its JSON (pure ASCII), so that every string
 * maps to its own stored text and back.
 */
export function storedText(id: string): string {
  return id.isWellFormed() && id.charCodeAt(0) !== 0 ? id : `\u0000${JSON.stringify(id)}`;
}
