/**
 * Why the rate limiter writes SQLite once a second, not per request: the cost of one
 * `take` with the bucket in memory, against the same `take` followed by writing the
 * bucket to SQLite (what a per-request write would add). Real state.db in a temp dir,
 * WAL mode as the server opens it. Run: `bun bench/ratelimit-persist.ts [takes]`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteRateLimiter } from "../src/ratelimit/sqlite.ts";
import { openStateDb } from "../src/state/sqlite.ts";

const takes = Number(process.argv[2] ?? 200_000);
const spec = { eventsPerSecond: 1e9, burst: 1e9 };
const keys = Array.from({ length: 10 }, (_, i) => `wk_${i}`);

function measure(label: string, persistEach: boolean): void {
  const dir = mkdtempSync(join(tmpdir(), "sluice-rl-"));
  const db = openStateDb(dir);
  const limiter = new SqliteRateLimiter(db, { persistIntervalMs: 1_000_000 });
  for (let i = 0; i < 10_000; i++) limiter.take(keys[i % 10]!, 1, spec); // warm-up
  const started = performance.now();
  for (let i = 0; i < takes; i++) {
    limiter.take(keys[i % 10]!, 1, spec);
    if (persistEach) limiter.persist();
  }
  const us = ((performance.now() - started) * 1000) / takes;
  console.log(`${label}: ${us.toFixed(2)} µs per request`);
  void limiter.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
}

measure("bucket in memory, SQLite once a second (adopted)", false);
measure("bucket written to SQLite on every request", true);
