import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { checkpointCursor } from "../log/checkpoint.ts";
import type { LogCursor } from "../log/stream.ts";
import type { RedisConnection } from "../state/redis.ts";
import {
  CLAIMED_RETRY_AFTER_S,
  isUnavailable,
  StorageUnavailableError,
} from "../storage/unavailable.ts";
import type { DedupKey, DedupStats, DedupStore } from "./interface.ts";

export interface RedisDedupOptions {
  windowSeconds: number;
  /**
   * Where this instance keeps its checkpoint: the position of its own event log up to
   * which every key is in Redis. Log positions are per instance, so the checkpoint lives
   * beside the log (the data dir), not in the shared Redis. Without it, start-up replays
   * the whole log.
   */
  checkpointFile?: string;
  logger?: Logger;
  /** The store's clock (ms); tests move it instead of sleeping. */
  now?: () => number;
  /** Unwritten keys held at most (Redis down); past it the oldest are dropped, logged. */
  maxPendingKeys?: number;
  /**
   * `remember`'s promise rejects (StorageUnavailableError) when the first write of its
   * keys fails, instead of resolving: the request then answers 503 rather than 200 and
   * the client retries. For a log whose own duplicate window stores that retry once
   * (NATS, `Nats-Msg-Id`); the keys are still kept and retried.
   */
  failUnwritten?: boolean;
}

interface Batch {
  keys: string[];
  expires: number[];
  upTo: LogCursor;
  /** Tells `remember`'s caller the batch was written, or its first write failed (`err`: kept and retried). */
  settle?: (err?: unknown) => void;
}

/**
 * Claims: `seen` marks the ids it found new as being stored by this process (a value
 * `~<token>`, never base 36) for CLAIM_MS, atomically with the check, and `remember`
 * replaces the claim with the key. An id another process claimed makes `seen` fail
 * (503, retried) instead of both instances storing it: the same messageId sent to two
 * instances at once is stored once. A claim of a process that crashed or whose append
 * failed lapses after CLAIM_MS (the id is refused with 503 until then). The token is
 * per process: a store reopened in the same process keeps its claims.
 */
const CLAIM = `~${crypto.randomUUID().slice(0, 13)}`;
const CLAIM_MS = 30_000;
const BUSY = "~busy";
/** Values of KEYS (a key's end of window, or "" for new ids, now claimed), or {BUSY}. */
const CLAIM_SCRIPT = `
local claim, ttl = ARGV[1], ARGV[2]
local values = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v and string.sub(v, 1, 1) == '~' and v ~= claim then return {'${BUSY}'} end
  values[i] = v
end
local out = {}
for i, key in ipairs(KEYS) do
  local v = values[i]
  if v and string.sub(v, 1, 1) ~= '~' then
    out[i] = v
  else
    redis.call('SET', key, claim, 'PX', ttl)
    out[i] = ''
  end
end
return out
`;

const KEY_HASH_CHARS = 22; // 132 bits of SHA-256, base64url
const CHECKPOINT_EVERY_MS = 1000;

/**
 * Dedup keys in Redis (SPEC 9), shared by every sluice instance: one Redis key per
 * (sourceId, messageId), its name a SHA-256 of both (short: 22 characters after the
 * prefix; any messageId, a lone surrogate or a NUL included, is a key of its own; about
 * 1 µs a key), its value the time the window ends (base 36 ms, so the store's clock
 * decides, as in the embedded store), its TTL the rest of the window (Redis forgets it
 * on its own).
 *
 * `seen` checks (and claims, below) a whole batch with one script call. `remember` keeps the keys in memory and
 * writes them with pipelined SETs, one round trip per flush; while Redis is unreachable
 * they stay in memory (bounded) and are retried, `seen` still finds them, and
 * `healthy()` is false. `seen` itself fails with StorageUnavailableError then (ingest
 * answers 503: an event is never acknowledged without a check).
 */
export class RedisDedupStore implements DedupStore {
  private readonly prefix: string;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly maxPending: number;
  /** Unwritten keys and when their window ends. */
  private readonly pending = new Map<string, number>();
  private queue: Batch[] = [];
  private flushing: Promise<void> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryDelayMs = 100;
  private writeFailing = false;
  private dropped = 0;
  /** Keys were dropped: the checkpoint stays put so that a restart replays them. */
  private checkpointHeld = false;
  private written: LogCursor | undefined;
  private savedCheckpoint: LogCursor | undefined;
  private lastSaveAt = 0;
  /** Keys this instance wrote, by when they leave the window (for stats). */
  private readonly recent: [expires: number, count: number][] = [];
  private waiters: (() => void)[] = [];
  private closed = false;

  private constructor(
    private readonly redis: RedisConnection,
    private readonly opts: RedisDedupOptions,
  ) {
    this.prefix = `${redis.keyPrefix}:dd:`;
    this.windowMs = opts.windowSeconds * 1000;
    this.now = opts.now ?? Date.now;
    this.maxPending = opts.maxPendingKeys ?? 200_000;
    this.written = opts.checkpointFile ? readCheckpoint(opts.checkpointFile) : undefined;
    this.savedCheckpoint = this.written;
  }

  static open(redis: RedisConnection, opts: RedisDedupOptions): RedisDedupStore {
    return new RedisDedupStore(redis, opts);
  }

  async seen(sourceId: string, messageIds: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    if (messageIds.length === 0) return found;
    const now = this.now();
    const ask: string[] = [];
    const askIds: string[] = [];
    for (const id of messageIds) {
      const key = this.keyOf(sourceId, id);
      const ends = this.pending.get(key);
      if (ends !== undefined && ends > now) found.add(id);
      else {
        ask.push(key);
        askIds.push(id);
      }
    }
    if (ask.length === 0) return found;
    const values = (await this.redis.eval(CLAIM_SCRIPT, ask, [CLAIM, String(CLAIM_MS)])) as
      | string[]
      | [typeof BUSY];
    if (values[0] === BUSY) {
      // Another instance is storing one of these ids now: the client retries (503) and
      // then finds it stored, or stores it if that instance failed.
      throw new StorageUnavailableError(
        "redis",
        "a messageId is being stored by another instance",
        {
          retryAfterSeconds: CLAIMED_RETRY_AFTER_S,
        },
      );
    }
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v && Number.parseInt(v, 36) > now) found.add(askIds[i]!);
    }
    return found;
  }

  remember(keys: DedupKey[], upTo: LogCursor, at?: number): Promise<void> {
    if (this.closed) throw new Error("dedup store is closed");
    const now = this.now();
    const batch: Batch = { keys: [], expires: [], upTo };
    for (const k of keys) {
      const ends = (k.at ?? at ?? now) + this.windowMs;
      if (ends <= now) continue; // already out of the window (replay of an old event)
      const key = this.keyOf(k.sourceId, k.messageId);
      this.pending.set(key, ends);
      batch.keys.push(key);
      batch.expires.push(ends);
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    batch.settle = (err) => {
      if (err === undefined || !this.opts.failUnwritten) resolve();
      else
        reject(
          isUnavailable(err)
            ? err
            : new StorageUnavailableError("redis", "dedup keys could not be written", {
                cause: err,
              }),
        );
    };
    this.queue.push(batch);
    this.bound();
    this.schedule();
    return promise;
  }

  checkpoint(): LogCursor | undefined {
    return this.written;
  }

  backlog(): Promise<void> {
    // While Redis is down, waiting would hold start-up; the bound drops keys instead.
    if (this.pending.size < this.maxPending || !this.redis.health().ok) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  stats(): DedupStats {
    const now = this.now();
    while (this.recent.length > 0 && this.recent[0]![0] <= now) this.recent.shift();
    let keys = this.pending.size;
    for (const [, n] of this.recent) keys += n;
    // A pending key: its 22-character name plus the map entry, about 100 bytes.
    return { keys, memoryBytes: this.pending.size * 100 + this.recent.length * 32 + 64 };
  }

  healthy(): boolean {
    return !this.writeFailing && this.redis.health().ok;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.flushing;
    // One last try for what is pending; keys still unwritten are replayed from the
    // log on the next start (the checkpoint did not pass them).
    if (this.queue.length > 0 && this.redis.health().ok) await this.flush().catch(() => {});
    this.saveCheckpoint(true);
    for (const b of this.queue) b.settle?.();
    for (const w of this.waiters.splice(0)) w();
  }

  private keyOf(sourceId: string, messageId: string): string {
    const text = `${sourceId}\0${messageId}`;
    // UTF-8 would fold a lone surrogate into U+FFFD: such ids are hashed as UTF-16 code
    // units behind a 0xFF byte (never part of UTF-8), so no two ids share a name.
    const bytes = text.isWellFormed()
      ? text
      : Buffer.concat([ILL_FORMED, Buffer.from(text, "utf16le")]);
    const digest = Bun.CryptoHasher.hash("sha256", bytes, "base64url") as string;
    return this.prefix + digest.slice(0, KEY_HASH_CHARS);
  }

  private schedule(): void {
    if (this.flushing || this.retryTimer !== undefined || this.closed) return;
    this.flushing = (async () => {
      // Keys of requests finishing in the same tick go in one round trip.
      await Promise.resolve();
      try {
        while (this.queue.length > 0) await this.flush();
        this.writeFailing = false;
        this.retryDelayMs = 100;
      } catch (err) {
        this.writeFailing = true;
        // Whoever waits for room (a start-up replay) must not wait for Redis: the
        // bound on pending keys drops the oldest instead (see backlog()).
        for (const w of this.waiters.splice(0)) w();
        if (!isUnavailable(err))
          this.opts.logger?.error({ err }, "dedup keys could not be written");
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.schedule();
        }, this.retryDelayMs);
        this.retryTimer.unref?.();
        this.retryDelayMs = Math.min(1000, this.retryDelayMs * 2);
      } finally {
        this.flushing = undefined;
      }
    })();
  }

  /** Writes every queued batch in one pipelined round trip; throws if any SET failed. */
  private async flush(): Promise<void> {
    const batches = this.queue;
    this.queue = [];
    const now = this.now();
    const sends: Promise<unknown>[] = [];
    for (const b of batches) {
      for (let i = 0; i < b.keys.length; i++) {
        const ttl = b.expires[i]! - now;
        if (ttl <= 0) continue;
        sends.push(
          this.redis.send("SET", [b.keys[i]!, b.expires[i]!.toString(36), "PX", String(ttl)]),
        );
      }
    }
    const results = await Promise.allSettled(sends);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) {
      // SET is idempotent: the whole lot is written again on the retry. Callers do not
      // wait for Redis to come back: their events are durable, the keys held here.
      const reason = (failed as PromiseRejectedResult).reason;
      for (const b of batches) b.settle?.(reason);
      this.queue = batches.concat(this.queue);
      throw reason;
    }
    for (const b of batches) {
      let n = 0;
      for (let i = 0; i < b.keys.length; i++) {
        if (this.pending.get(b.keys[i]!) === b.expires[i]) this.pending.delete(b.keys[i]!);
        n++;
      }
      if (n > 0) this.recent.push([b.expires.at(-1)!, n]);
      if (!this.checkpointHeld) this.written = b.upTo;
      b.settle?.();
    }
    this.saveCheckpoint(false);
    if (this.pending.size < this.maxPending) for (const w of this.waiters.splice(0)) w();
  }

  /**
   * Keeps at most maxPending unwritten keys: the oldest batches go (logged). The log still
   * has their events and the checkpoint stops where it was, so a restart writes them.
   */
  private bound(): void {
    if (this.pending.size <= this.maxPending) return;
    let dropped = 0;
    while (this.pending.size > this.maxPending && this.queue.length > 1) {
      const b = this.queue.shift()!;
      b.settle?.();
      for (let i = 0; i < b.keys.length; i++) {
        if (this.pending.get(b.keys[i]!) === b.expires[i]) this.pending.delete(b.keys[i]!);
      }
      dropped += b.keys.length;
    }
    if (dropped === 0) return;
    this.dropped += dropped;
    this.checkpointHeld = true;
    this.opts.logger?.error(
      { dropped: this.dropped, held: this.pending.size },
      "redis unreachable too long: oldest unwritten dedup keys dropped (rewritten from the log on restart)",
    );
  }

  private saveCheckpoint(force: boolean): void {
    const file = this.opts.checkpointFile;
    const at = this.written;
    if (!file || !at || at === this.savedCheckpoint) return;
    if (!force && Date.now() - this.lastSaveAt < CHECKPOINT_EVERY_MS) return;
    try {
      writeDurably(file, JSON.stringify(at));
      this.savedCheckpoint = at;
      this.lastSaveAt = Date.now();
    } catch (err) {
      this.opts.logger?.error({ err }, "dedup checkpoint could not be saved");
    }
  }
}

const ILL_FORMED = Buffer.from([0xff]);

/**
 * Replaces `file` with `text`, synced: the temp file before the rename, the folder after
 * it, so a power loss leaves the old checkpoint or the new one, never an empty file
 * (which would make the next start rewrite the whole log's keys).
 */
function writeDurably(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dir = openSync(dirname(file), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

function readCheckpoint(file: string): LogCursor | undefined {
  try {
    return checkpointCursor(JSON.parse(readFileSync(file, "utf8")));
  } catch {
    return undefined;
  }
}
