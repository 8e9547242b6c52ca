import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteRateLimiter } from "../../src/ratelimit/sqlite.ts";
import { openStateDb } from "../../src/state/sqlite.ts";
import { rateLimiterContract } from "./rate-limiter.ts";

rateLimiterContract("sqlite (state database)", async (now) => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-contract-rate-"));
  let db = openStateDb(dir);
  let limiter = new SqliteRateLimiter(db, { now });
  return {
    limiter,
    async reopen() {
      await limiter.close();
      db.close();
      db = openStateDb(dir);
      limiter = new SqliteRateLimiter(db, { now });
      return limiter;
    },
    async cleanup() {
      await limiter.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
