import type { RedisConnection } from "../state/redis.ts";
import type { FunctionStore } from "./store.ts";
import { checkEntrySize, quotaProblem, STORE_LIMITS, StoreQuotaError } from "./store-quota.ts";

/**
 * Sets one entry if the owner's quota allows, pruning the owner's expired entries first
 * when it would not (expired entries count until pruned, as in the SQLite store).
 * KEYS: values (hash), expiries (hash, ms), usage (hash: bytes). ARGV: key, json,
 * expiresAt ("" for none), now, max keys, max bytes.
 * Returns {0} when stored, else {1, keys, bytes, replacedBytes or -1} for the message.
 */
const SET = `
local key, json, expiresAt, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local maxKeys, maxBytes = tonumber(ARGV[5]), tonumber(ARGV[6])
local entry = #key + #json
local function state()
  local old = redis.call("HGET", KEYS[1], key)
  local replaced = old and (#key + #old) or nil
  local keys = redis.call("HLEN", KEYS[1])
  local bytes = tonumber(redis.call("HGET", KEYS[3], "bytes") or "0")
  local over = (keys + (replaced and 0 or 1) > maxKeys) or (bytes - (replaced or 0) + entry > maxBytes)
  return over, replaced, keys, bytes
end
local over, replaced, keys, bytes = state()
if over then
  local exp = redis.call("HGETALL", KEYS[2])
  for i = 1, #exp, 2 do
    if tonumber(exp[i + 1]) <= now then
      local v = redis.call("HGET", KEYS[1], exp[i])
      if v then redis.call("HINCRBY", KEYS[3], "bytes", -(#exp[i] + #v)) end
      redis.call("HDEL", KEYS[1], exp[i])
      redis.call("HDEL", KEYS[2], exp[i])
    end
  end
  over, replaced, keys, bytes = state()
  if over then return { 1, keys, bytes, replaced or -1 } end
end
redis.call("HSET", KEYS[1], key, json)
if expiresAt == "" then redis.call("HDEL", KEYS[2], key) else redis.call("HSET", KEYS[2], key, expiresAt) end
redis.call("HINCRBY", KEYS[3], "bytes", entry - (replaced or 0))
return { 0 }
`;

/** Deletes one entry and its share of the usage. Same KEYS; ARGV: key. */
const DEL = `
local old = redis.call("HGET", KEYS[1], ARGV[1])
if not old then return 0 end
redis.call("HDEL", KEYS[1], ARGV[1])
redis.call("HDEL", KEYS[2], ARGV[1])
redis.call("HINCRBY", KEYS[3], "bytes", -(#ARGV[1] + #old))
return 1
`;

/** Value and expiry of one entry, in one round trip. KEYS: values, expiries; ARGV: key. */
const GET = `
return { redis.call("HGET", KEYS[1], ARGV[1]), redis.call("HGET", KEYS[2], ARGV[1]) }
`;

/**
 * `ctx.store` in Redis (SPEC 7, 9), shared by every sluice instance, so a function
 * sees the same state whichever instance runs it. Per owner (connection/function) a
 * hash of JSON values, a hash of expiry times and a byte tally, changed only by atomic
 * scripts, so the quotas hold with many instances writing at once. Expiry is decided
 * by the stored time on this instance's clock (exact, and testable with a clock), and
 * expired entries are dropped when their owner next needs the room.
 */
export class RedisFunctionStore implements FunctionStore {
  private readonly now: () => number;
  private readonly prefix: string;

  constructor(
    private readonly redis: RedisConnection,
    opts: { now?: () => number } = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.prefix = `${redis.keyPrefix}:fs:`;
  }

  private keys(owner: string): string[] {
    const base = this.prefix + owner;
    return [`${base}:values`, `${base}:expiries`, `${base}:usage`];
  }

  private async entry(owner: string, key: string) {
    const [value, expiresAt] = (await this.redis.eval(GET, this.keys(owner).slice(0, 2), [
      key,
    ])) as [string | null, string | null];
    if (value === null || value === undefined) return undefined;
    const at = expiresAt === null || expiresAt === undefined ? null : Number(expiresAt);
    if (at !== null && at <= this.now()) return undefined;
    return { value, expiresAt: at };
  }

  async get(owner: string, key: string): Promise<string | undefined> {
    return (await this.entry(owner, key))?.value;
  }

  async set(owner: string, key: string, json: string, ttlSeconds: number | null): Promise<void> {
    checkEntrySize(key, json);
    const now = this.now();
    const expiresAt = ttlSeconds === null ? "" : String(now + Math.round(ttlSeconds * 1000));
    const answer = (await this.redis.eval(SET, this.keys(owner), [
      key,
      json,
      expiresAt,
      String(now),
      String(STORE_LIMITS.keys),
      String(STORE_LIMITS.totalBytes),
    ])) as number[];
    if (Number(answer[0]) === 0) return;
    const [, keys, bytes, replaced] = answer.map(Number);
    const entryBytes = Buffer.byteLength(key) + Buffer.byteLength(json);
    const problem = quotaProblem(
      { keys: keys!, bytes: bytes! },
      entryBytes,
      replaced! < 0 ? undefined : replaced,
    );
    throw new StoreQuotaError(problem ?? "store is full");
  }

  async del(owner: string, key: string): Promise<void> {
    await this.redis.eval(DEL, this.keys(owner), [key]);
  }

  async ttl(owner: string, key: string): Promise<number> {
    const e = await this.entry(owner, key);
    if (!e) return -2;
    if (e.expiresAt === null) return -1;
    return Math.ceil((e.expiresAt - this.now()) / 1000);
  }

  /** The connection is shared; its owner closes it. */
  close(): void {}
}
