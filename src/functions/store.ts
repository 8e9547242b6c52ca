import type { Database } from "bun:sqlite";
import type { ServiceReply, StoreRequest } from "./protocol.ts";
import { checkEntrySize, quotaProblem, StoreQuotaError, type StoreUsage } from "./store-quota.ts";

/**
 * The persistent key-value store behind `ctx.store` (SPEC 7). Each function of each
 * connection has its own keys (its `owner`, see storeOwner), so one connection's
 * functions never see or change another's. Values are JSON text: the store never
 * parses what user code wrote. `set` enforces the quotas of store-quota.ts.
 */
export interface FunctionStore {
  /** The JSON text stored under `key`, or undefined when missing or expired. */
  get(owner: string, key: string): Promise<string | undefined>;
  /**
   * Stores `json` under `key` for `ttlSeconds` (null: no expiry). Throws
   * StoreQuotaError when the entry, or the owner's keys with it, would be over quota.
   */
  set(owner: string, key: string, json: string, ttlSeconds: number | null): Promise<void>;
  del(owner: string, key: string): Promise<void>;
  /** Whole seconds left: -2 for a missing key, -1 for a key without expiry. */
  ttl(owner: string, key: string): Promise<number>;
  close(): void;
}

/** The owner of a function's keys: connection and function (ids cannot hold a `/`). */
export function storeOwner(connectionId: string, functionId: string): string {
  return `${connectionId}/${functionId}`;
}

/**
 * Carries out a store request from user code for `owner`. A quota refusal reaches
 * user code as it is (a StoreQuotaError saying which limit); any other failure as a
 * plain "store unavailable" (the detail goes to `onError`, i.e. the server's log).
 */
export async function runStoreRequest(
  store: FunctionStore,
  owner: string,
  m: StoreRequest,
  onError: (err: unknown) => void,
): Promise<ServiceReply> {
  try {
    if (typeof m.key !== "string" || m.key === "") {
      return { error: { name: "TypeError", message: "store key must be a non-empty string" } };
    }
    let value: string | number | undefined;
    checkEntrySize(m.key, m.op === "set" ? (m.value ?? "null") : undefined);
    if (m.op === "get") value = await store.get(owner, m.key);
    else if (m.op === "ttl") value = await store.ttl(owner, m.key);
    else if (m.op === "del") await store.del(owner, m.key);
    else if (m.op === "set") await store.set(owner, m.key, m.value ?? "null", m.ttl ?? null);
    else return { error: { name: "TypeError", message: "unknown store operation" } };
    return { value };
  } catch (err) {
    if (err instanceof StoreQuotaError) return { error: { name: err.name, message: err.message } };
    onError(err);
    return { error: { name: "Error", message: "store unavailable" } };
  }
}

export interface SqliteFunctionStoreOptions {
  now?: () => number;
  /** How often expired entries are deleted. */
  pruneIntervalMs?: number;
  onError?: (err: Error) => void;
}

/**
 * The function store in the embedded state database (SPEC 5: one SQLite database).
 * What each owner uses is counted once and then kept up to date in memory, so a
 * quota check costs no scan; expired entries count until pruned, and an owner at its
 * quota has its expired entries pruned before a write is refused.
 */
export class SqliteFunctionStore implements FunctionStore {
  private readonly now: () => number;
  private readonly lookup;
  private readonly entrySize;
  private readonly upsert;
  private readonly remove;
  private readonly expire;
  private readonly expireOwner;
  private readonly measure;
  private readonly usage = new Map<string, StoreUsage>();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(db: Database, opts: SqliteFunctionStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
    // Replaces the install-wide `function_store` table of 0.1.0, whose keys had no owner.
    db.exec(`CREATE TABLE IF NOT EXISTS function_kv (
      owner TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires_at INTEGER,
      PRIMARY KEY (owner, key)) WITHOUT ROWID`);
    this.lookup = db.query<{ value: string; expires_at: number | null }, [string, string]>(
      "SELECT value, expires_at FROM function_kv WHERE owner = ? AND key = ?",
    );
    this.entrySize = db.query<{ bytes: number }, [string, string]>(
      "SELECT length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)) AS bytes " +
        "FROM function_kv WHERE owner = ? AND key = ?",
    );
    this.upsert = db.query(
      "INSERT INTO function_kv (owner, key, value, expires_at) VALUES (?, ?, ?, ?) " +
        "ON CONFLICT(owner, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    );
    this.remove = db.query("DELETE FROM function_kv WHERE owner = ? AND key = ?");
    this.expire = db.query("DELETE FROM function_kv WHERE expires_at <= ?");
    this.expireOwner = db.query("DELETE FROM function_kv WHERE owner = ? AND expires_at <= ?");
    this.measure = db.query<{ keys: number; bytes: number }, [string]>(
      "SELECT count(*) AS keys, " +
        "coalesce(sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0) AS bytes " +
        "FROM function_kv WHERE owner = ?",
    );
    this.timer = setInterval(() => {
      try {
        this.prune();
      } catch (err) {
        opts.onError?.(err as Error);
      }
    }, opts.pruneIntervalMs ?? 60_000);
    this.timer.unref?.();
  }

  async get(owner: string, key: string): Promise<string | undefined> {
    return this.live(owner, key)?.value;
  }

  async set(owner: string, key: string, json: string, ttlSeconds: number | null): Promise<void> {
    checkEntrySize(key, json);
    const entryBytes = Buffer.byteLength(key) + Buffer.byteLength(json);
    let replaced = this.entrySize.get(owner, key)?.bytes;
    let usage = this.usageOf(owner);
    if (quotaProblem(usage, entryBytes, replaced)) {
      // Expired entries count until pruned: prune this owner's, then look again.
      this.expireOwner.run(owner, this.now());
      this.usage.delete(owner);
      usage = this.usageOf(owner);
      replaced = this.entrySize.get(owner, key)?.bytes;
      const problem = quotaProblem(usage, entryBytes, replaced);
      if (problem) throw new StoreQuotaError(problem);
    }
    const expiresAt = ttlSeconds === null ? null : this.now() + Math.round(ttlSeconds * 1000);
    this.upsert.run(owner, key, json, expiresAt);
    usage.bytes += entryBytes - (replaced ?? 0);
    if (replaced === undefined) usage.keys += 1;
  }

  async del(owner: string, key: string): Promise<void> {
    const bytes = this.entrySize.get(owner, key)?.bytes;
    if (bytes === undefined) return;
    this.remove.run(owner, key);
    const usage = this.usage.get(owner);
    if (usage) {
      usage.keys -= 1;
      usage.bytes -= bytes;
    }
  }

  async ttl(owner: string, key: string): Promise<number> {
    const row = this.live(owner, key);
    if (!row) return -2;
    if (row.expires_at === null) return -1;
    return Math.ceil((row.expires_at - this.now()) / 1000);
  }

  /** Deletes expired entries; returns how many. */
  prune(): number {
    const n = this.expire.run(this.now()).changes;
    if (n > 0) this.usage.clear();
    return n;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private usageOf(owner: string): StoreUsage {
    let usage = this.usage.get(owner);
    if (!usage) {
      const row = this.measure.get(owner)!;
      usage = { keys: row.keys, bytes: row.bytes };
      this.usage.set(owner, usage);
    }
    return usage;
  }

  private live(owner: string, key: string) {
    const row = this.lookup.get(owner, key);
    if (!row || (row.expires_at !== null && row.expires_at <= this.now())) return undefined;
    return row;
  }
}
