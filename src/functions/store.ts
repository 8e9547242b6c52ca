import type { Database } from "bun:sqlite";
import type { StoreReply, StoreRequest } from "./protocol.ts";

/**
 * The persistent key-value store behind `ctx.store` (SPEC 7), shared by every function
 * of the install. Values are JSON text: the store never parses what user code wrote.
 */
export interface FunctionStore {
  /** The JSON text stored under `key`, or undefined when missing or expired. */
  get(key: string): Promise<string | undefined>;
  /** Stores `json` under `key` for `ttlSeconds` (null: no expiry). */
  set(key: string, json: string, ttlSeconds: number | null): Promise<void>;
  del(key: string): Promise<void>;
  /** Whole seconds left: -2 for a missing key, -1 for a key without expiry. */
  ttl(key: string): Promise<number>;
  close(): void;
}

/**
 * Carries out a store request from user code. A failure reaches user code as a plain
 * "store unavailable" (the detail goes to `onError`, i.e. the server's log).
 */
export async function runStoreRequest(
  store: FunctionStore,
  m: StoreRequest,
  onError: (err: unknown) => void,
): Promise<StoreReply> {
  try {
    let value: string | number | undefined;
    if (m.op === "get") value = await store.get(m.key);
    else if (m.op === "ttl") value = await store.ttl(m.key);
    else if (m.op === "del") await store.del(m.key);
    else await store.set(m.key, m.value ?? "null", m.ttl ?? null);
    return { id: m.id, value };
  } catch (err) {
    onError(err);
    return { id: m.id, error: { name: "Error", message: "store unavailable" } };
  }
}

export interface SqliteFunctionStoreOptions {
  now?: () => number;
  /** How often expired entries are deleted. */
  pruneIntervalMs?: number;
  onError?: (err: Error) => void;
}

/** The function store in the embedded state database (SPEC 5: one SQLite database). */
export class SqliteFunctionStore implements FunctionStore {
  private readonly now: () => number;
  private readonly lookup;
  private readonly upsert;
  private readonly remove;
  private readonly expire;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(db: Database, opts: SqliteFunctionStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
    db.exec(`CREATE TABLE IF NOT EXISTS function_store (
      key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER) WITHOUT ROWID`);
    this.lookup = db.query<{ value: string; expires_at: number | null }, [string]>(
      "SELECT value, expires_at FROM function_store WHERE key = ?",
    );
    this.upsert = db.query(
      "INSERT INTO function_store (key, value, expires_at) VALUES (?, ?, ?) " +
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    );
    this.remove = db.query("DELETE FROM function_store WHERE key = ?");
    this.expire = db.query("DELETE FROM function_store WHERE expires_at <= ?");
    this.timer = setInterval(() => {
      try {
        this.prune();
      } catch (err) {
        opts.onError?.(err as Error);
      }
    }, opts.pruneIntervalMs ?? 60_000);
    this.timer.unref?.();
  }

  async get(key: string): Promise<string | undefined> {
    return this.live(key)?.value;
  }

  async set(key: string, json: string, ttlSeconds: number | null): Promise<void> {
    const expiresAt = ttlSeconds === null ? null : this.now() + Math.round(ttlSeconds * 1000);
    this.upsert.run(key, json, expiresAt);
  }

  async del(key: string): Promise<void> {
    this.remove.run(key);
  }

  async ttl(key: string): Promise<number> {
    const row = this.live(key);
    if (!row) return -2;
    if (row.expires_at === null) return -1;
    return Math.ceil((row.expires_at - this.now()) / 1000);
  }

  /** Deletes expired entries; returns how many. */
  prune(): number {
    return this.expire.run(this.now()).changes;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private live(key: string) {
    const row = this.lookup.get(key);
    if (!row || (row.expires_at !== null && row.expires_at <= this.now())) return undefined;
    return row;
  }
}
