import type { RedisConnection } from "../../state/redis.ts";
import type { DeliveryFailure } from "../interface.ts";
import type { DeadLetter, DeadLetterCount, DeadLetterStore, NewDeadLetter } from "./interface.ts";

/**
 * Adds a letter: its JSON, its id in the connection's ordered index, its event count,
 * and the per-connection tallies, in one atomic step.
 * KEYS: bodies (hash), ids (sorted set), sizes (hash), tallies (hash).
 * ARGV: id, json, connectionId, events.
 */
const ADD = `
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
redis.call("ZADD", KEYS[2], 0, ARGV[1])
redis.call("HSET", KEYS[3], ARGV[1], ARGV[4])
redis.call("HINCRBY", KEYS[4], ARGV[3] .. "\\0l", 1)
redis.call("HINCRBY", KEYS[4], ARGV[3] .. "\\0e", tonumber(ARGV[4]))
return 1
`;

/** Removes a letter and its share of the tallies; 0 when it was not there. Same KEYS; ARGV: id, connectionId. */
const REMOVE = `
local n = redis.call("HGET", KEYS[3], ARGV[1])
if not n then return 0 end
redis.call("HDEL", KEYS[1], ARGV[1])
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("HDEL", KEYS[3], ARGV[1])
local left = redis.call("HINCRBY", KEYS[4], ARGV[2] .. "\\0l", -1)
redis.call("HINCRBY", KEYS[4], ARGV[2] .. "\\0e", -tonumber(n))
if left <= 0 then redis.call("HDEL", KEYS[4], ARGV[2] .. "\\0l", ARGV[2] .. "\\0e") end
return 1
`;

/** Replaces a letter's body if it is still there (a redrive failed again). KEYS[1]: bodies; ARGV: id, json. */
const REPLACE = `
if redis.call("HEXISTS", KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
return 1
`;

/**
 * Dead letters in Redis (SPEC 8, 9): shared by every sluice instance, so a letter one
 * instance wrote is listed and redriven by any other. Per connection a hash of letter
 * JSON, a sorted set of ids (UUIDv7: lexical order is creation order) for paging, and
 * tallies kept by the same atomic scripts that add and remove letters.
 *
 * Durability is Redis's: `add` resolves once Redis has the letter in memory and its AOF
 * (run Redis with `appendfsync always` for a letter to survive a power loss, as the
 * SQLite store's does; `everysec` risks one second of them). docs/scaling.md says so.
 */
export class RedisDeadLetterStore implements DeadLetterStore {
  private readonly prefix: string;
  private readonly tallies: string;

  constructor(private readonly redis: RedisConnection) {
    this.prefix = `${redis.keyPrefix}:dl:`;
    this.tallies = `${redis.keyPrefix}:dl-tallies`;
  }

  private keys(connectionId: string): string[] {
    const base = this.prefix + connectionId;
    return [`${base}:letters`, `${base}:ids`, `${base}:sizes`, this.tallies];
  }

  async add(letter: NewDeadLetter): Promise<DeadLetter> {
    const at = letter.at ?? Date.now();
    const stored: DeadLetter = {
      id: Bun.randomUUIDv7(),
      connectionId: letter.connectionId,
      createdAt: at,
      lastAttemptAt: at,
      stage: letter.stage,
      events: letter.events,
      origins: letter.origins,
      failure: letter.failure,
      attempts: letter.attempts,
    };
    await this.redis.eval(ADD, this.keys(stored.connectionId), [
      stored.id,
      JSON.stringify(stored),
      stored.connectionId,
      String(stored.events.length),
    ]);
    return stored;
  }

  async list(
    connectionId: string,
    opts: { limit?: number; after?: string } = {},
  ): Promise<DeadLetter[]> {
    const [letters, ids] = this.keys(connectionId);
    const from = opts.after === undefined ? "-" : `(${opts.after}`;
    const page = (await this.redis.send("ZRANGE", [
      ids!,
      from,
      "+",
      "BYLEX",
      "LIMIT",
      "0",
      String(opts.limit ?? 100),
    ])) as string[];
    if (page.length === 0) return [];
    const bodies = (await this.redis.send("HMGET", [letters!, ...page])) as (string | null)[];
    return bodies.filter((b): b is string => b !== null).map((b) => JSON.parse(b) as DeadLetter);
  }

  async get(connectionId: string, id: string): Promise<DeadLetter | undefined> {
    const body = await this.redis.send("HGET", [this.keys(connectionId)[0]!, id]);
    return typeof body === "string" ? (JSON.parse(body) as DeadLetter) : undefined;
  }

  async counts(): Promise<Map<string, DeadLetterCount>> {
    const flat = (await this.redis.send("HGETALL", [this.tallies])) as
      | Record<string, string>
      | string[];
    const pairs = Array.isArray(flat)
      ? Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i]!, flat[2 * i + 1]!])
      : Object.entries(flat);
    const out = new Map<string, DeadLetterCount>();
    for (const [field, value] of pairs) {
      const cut = field!.lastIndexOf("\u0000");
      const id = field!.slice(0, cut);
      const count = out.get(id) ?? { letters: 0, events: 0 };
      if (field!.endsWith("\u0000l")) count.letters = Number(value);
      else count.events = Number(value);
      out.set(id, count);
    }
    for (const [id, c] of out) if (c.letters <= 0) out.delete(id);
    return out;
  }

  async failedAgain(
    connectionId: string,
    id: string,
    failure: DeliveryFailure,
    at = Date.now(),
  ): Promise<void> {
    const letter = await this.get(connectionId, id);
    if (!letter) return;
    const next = { ...letter, failure, lastAttemptAt: at, attempts: letter.attempts + 1 };
    await this.redis.eval(REPLACE, [this.keys(connectionId)[0]!], [id, JSON.stringify(next)]);
  }

  async remove(connectionId: string, id: string): Promise<boolean> {
    const done = await this.redis.eval(REMOVE, this.keys(connectionId), [id, connectionId]);
    return Number(done) === 1;
  }

  /** The connection is shared; its owner closes it. */
  close(): void {}
}
