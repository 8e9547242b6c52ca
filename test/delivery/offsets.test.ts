import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteOffsetStore } from "../../src/delivery/offsets.ts";
import { openStateDb } from "../../src/state/sqlite.ts";

// Connection offsets in state.db across versions: a table written before connections'
// starts were kept (start_segment, start_offset) is opened as it is, its offsets kept and
// its starts unknown; an older version still writes the newer table.

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "sluice-offsets-"));
  dirs.push(dir);
  return dir;
}

/** The table as versions before 661f592 made it, with one connection's offset. */
const OLD_TABLE = `CREATE TABLE connection_offsets (
  connection_id TEXT PRIMARY KEY, segment INTEGER NOT NULL, offset INTEGER NOT NULL,
  updated_at INTEGER NOT NULL) WITHOUT ROWID`;
const OLD_UPSERT =
  "INSERT INTO connection_offsets (connection_id, segment, offset, updated_at) VALUES (?, ?, ?, ?) " +
  "ON CONFLICT(connection_id) DO UPDATE SET segment = excluded.segment, " +
  "offset = excluded.offset, updated_at = excluded.updated_at";

test("an older table: its offsets are kept, their starts unknown; a new connection's first offset is its start", () => {
  const dir = dataDir();
  let db = openStateDb(dir);
  db.exec(OLD_TABLE);
  db.query(OLD_UPSERT).run("con_old", 3, 400, Date.now());
  db.close();

  db = openStateDb(dir);
  const store = new SqliteOffsetStore(db);
  expect(store.get("con_old")).toEqual({ segment: 3, offset: 400 });
  expect(store.startOf("con_old")).toBeUndefined();
  // Its later offsets do not make one up.
  store.set("con_old", { segment: 3, offset: 900 });
  expect(store.get("con_old")).toEqual({ segment: 3, offset: 900 });
  expect(store.startOf("con_old")).toBeUndefined();
  store.set("con_new", { segment: 3, offset: 900 });
  store.set("con_new", { segment: 4, offset: 10 });
  expect(store.get("con_new")).toEqual({ segment: 4, offset: 10 });
  expect(store.startOf("con_new")).toEqual({ segment: 3, offset: 900 });
  db.close();
});

test("a table left half changed (a crash between adding the start's two columns) still opens", () => {
  const dir = dataDir();
  let db = openStateDb(dir);
  db.exec(OLD_TABLE);
  db.query(OLD_UPSERT).run("con_old", 1, 50, Date.now());
  // The first ALTER committed, the process killed before the second.
  db.exec("ALTER TABLE connection_offsets ADD COLUMN start_segment INTEGER");
  db.close();

  db = openStateDb(dir);
  const store = new SqliteOffsetStore(db);
  expect(store.get("con_old")).toEqual({ segment: 1, offset: 50 });
  expect(store.startOf("con_old")).toBeUndefined();
  store.set("con_new", { segment: 2, offset: 0 });
  store.set("con_new", { segment: 2, offset: 70 });
  expect(store.startOf("con_new")).toEqual({ segment: 2, offset: 0 });
  db.close();
});

test("after a downgrade, the older version's writes go into the newer table and keep the starts", () => {
  const dir = dataDir();
  let db = openStateDb(dir);
  new SqliteOffsetStore(db).set("con_a", { segment: 1, offset: 5 });
  db.close();

  // An older sluice on the same state.db: its CREATE is a no-op, its upsert names its columns.
  db = openStateDb(dir);
  db.exec(OLD_TABLE.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"));
  db.query(OLD_UPSERT).run("con_a", 1, 80, Date.now());
  db.query(OLD_UPSERT).run("con_b", 2, 0, Date.now());
  db.close();

  db = openStateDb(dir);
  const store = new SqliteOffsetStore(db);
  expect(store.get("con_a")).toEqual({ segment: 1, offset: 80 });
  expect(store.startOf("con_a")).toEqual({ segment: 1, offset: 5 });
  expect(store.get("con_b")).toEqual({ segment: 2, offset: 0 });
  expect(store.startOf("con_b")).toBeUndefined();
  db.close();
});
