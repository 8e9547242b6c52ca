import type { Database } from "bun:sqlite";
import { type BucketState, fullBucket, takeTokens } from "./bucket.ts";
import type { RateDecision, RateLimiter, RateSpec } from "./interface.ts";

export interface SqliteRateLimiterOptions {
  /** How often changed buckets are written to SQLite. */
  persistIntervalMs?: number;
  now?: () => number;
  onError?: (err: Error) => void;
}

/**
 * Token buckets held in memory and written to SQLite in one transaction per interval
 * (and on close), so the hot path never waits on SQLite and a restart does not
 * reset a limit. A crash forgets at most one interval of spending.
 */
export class SqliteRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, BucketState>();
  private readonly dirty = new Set<string>();
  private readonly now: () => number;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly load;
  private readonly save;

  constructor(
    private readonly db: Database,
    opts: SqliteRateLimiterOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    db.exec(`CREATE TABLE IF NOT EXISTS rate_buckets (
      key_id TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID`);
    this.load = db.query<{ tokens: number; updated_at: number }, [string]>(
      "SELECT tokens, updated_at FROM rate_buckets WHERE key_id = ?",
    );
    this.save = db.query(
      "INSERT INTO rate_buckets (key_id, tokens, updated_at) VALUES (?, ?, ?) " +
        "ON CONFLICT(key_id) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
    );
    this.timer = setInterval(() => {
      try {
        this.persist();
      } catch (err) {
        opts.onError?.(err as Error);
      }
    }, opts.persistIntervalMs ?? 1000);
    this.timer.unref?.();
  }

  take(keyId: string, cost: number, spec: RateSpec): RateDecision {
    const now = this.now();
    let state = this.buckets.get(keyId);
    if (!state) {
      const row = this.load.get(keyId);
      state = row ? { tokens: row.tokens, updatedAt: row.updated_at } : fullBucket(spec, now);
    }
    const result = takeTokens(state, cost, spec, now);
    this.buckets.set(keyId, result.state);
    this.dirty.add(keyId);
    return result.decision;
  }

  /** Writes changed buckets in one transaction. */
  persist(): void {
    if (this.dirty.size === 0) return;
    const keys = [...this.dirty];
    this.dirty.clear();
    this.db.transaction(() => {
      for (const k of keys) {
        const s = this.buckets.get(k);
        if (s) this.save.run(k, s.tokens, s.updatedAt);
      }
    })();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.persist();
  }
}
