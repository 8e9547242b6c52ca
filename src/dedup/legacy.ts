import type { Database } from "bun:sqlite";

/**
 * Removes the dedup keys of versions before dedup.db (one text-keyed table in state.db)
 * and their checkpoint. The new store then has no checkpoint, so start-up replays the
 * event log and rebuilds the keys of the window from it. Runs once: later starts find
 * nothing to drop.
 */
export function dropLegacyDedupKeys(stateDb: Database): void {
  const legacy = stateDb
    .query<{ n: number }, []>(
      "SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table' AND name = 'dedup_keys'",
    )
    .get();
  if (!legacy?.n) return;
  stateDb.transaction(() => {
    stateDb.exec("DROP TABLE dedup_keys");
    stateDb.exec("DELETE FROM meta WHERE key = 'dedup.checkpoint'");
  })();
}
