import type { Database } from "bun:sqlite";
import { join } from "node:path";
import type { Logger } from "pino";
import type { SluiceConfig } from "../config/schema.ts";
import type { DedupStore } from "../dedup/interface.ts";
import { RedisDedupStore } from "../dedup/redis.ts";
import { SqliteDedupStore } from "../dedup/sqlite.ts";
import type { DeadLetterStore } from "../delivery/dead-letters/interface.ts";
import { RedisDeadLetterStore } from "../delivery/dead-letters/redis.ts";
import { SqliteDeadLetterStore } from "../delivery/dead-letters/sqlite.ts";
import { RedisFunctionStore } from "../functions/redis.ts";
import { type FunctionStore, SqliteFunctionStore } from "../functions/store.ts";
import type { RateLimiter } from "../ratelimit/interface.ts";
import { RedisRateLimiter } from "../ratelimit/redis.ts";
import { SqliteRateLimiter } from "../ratelimit/sqlite.ts";
import { RedisConnection } from "./redis.ts";

/** The stores `state.backend` chooses (SPEC 9): dedup keys, rate limits, function store, dead letters. */
export interface SharedState {
  dedup: DedupStore;
  limiter: RateLimiter;
  functionStore: FunctionStore;
  deadLetters: DeadLetterStore;
  /** Close them in reverse order (the caller's cleanup list reverses). */
  closers: (() => Promise<void> | void)[];
}

/**
 * `file`: the embedded stores in the data dir. `redis`: the same four in Redis, shared by
 * every instance pointing at it, over one connection. Redis unreachable at start is no
 * failure: the instance starts, `/ready` and ingest answer 503 until Redis answers.
 */
export async function openSharedState(
  config: SluiceConfig,
  ctx: { dataDir: string; db: Database; logger: Logger; onStateError: (err: Error) => void },
): Promise<SharedState> {
  const { dataDir, db, logger, onStateError } = ctx;
  const closers: SharedState["closers"] = [];
  if (config.state.backend === "redis") {
    const redis = await RedisConnection.open(config.state.url, {
      logger,
      keyPrefix: config.state.keyPrefix,
    });
    closers.push(() => redis.close());
    if (!redis.health().ok) logger.error(redis.health(), "redis unreachable at start: not ready");
    const dedup = RedisDedupStore.open(redis, {
      windowSeconds: config.dedup.windowSeconds,
      // Positions of this instance's own log: kept beside it, not in the shared Redis.
      // With the log in NATS there is nothing of this instance's own to replay (a crash
      // between publish ack and key write is covered by the stream's duplicate window).
      ...(config.log.backend === "file"
        ? { checkpointFile: join(dataDir, "dedup-redis-checkpoint.json") }
        : // Keys not written: 503, and the client's retry is stored once by the stream.
          { failUnwritten: true }),
      logger,
    });
    closers.push(() => dedup.close());
    return {
      dedup,
      limiter: new RedisRateLimiter(redis),
      functionStore: new RedisFunctionStore(redis),
      deadLetters: new RedisDeadLetterStore(redis),
      closers,
    };
  }
  const dedup = await SqliteDedupStore.open(dataDir, {
    windowSeconds: config.dedup.windowSeconds,
    onError: (err) => logger.error({ err }, "dedup keys could not be written"),
  });
  closers.push(() => dedup.close());
  const limiter = new SqliteRateLimiter(db, { onError: onStateError });
  closers.push(() => limiter.close());
  const functionStore = new SqliteFunctionStore(db, { onError: onStateError });
  closers.push(() => functionStore.close());
  const deadLetters = SqliteDeadLetterStore.open(dataDir);
  closers.push(() => deadLetters.close());
  return { dedup, limiter, functionStore, deadLetters, closers };
}

/** The shared stores a CLI command needs, from `state.backend`, and how to let them go. */
export interface CliState {
  deadLetters: DeadLetterStore;
  /** The functions' `ctx.store`; opened only when asked for (`withFunctionStore`). */
  functionStore?: FunctionStore;
  close(): Promise<void>;
}

/**
 * The dead letters (and, when asked, the function store) of `state.backend` for the CLI
 * (`sluice deadletters`, `sluice connections`, redrive and replay), beside a running
 * server or without one: SQLite in the data dir (read-only when `readOnly`), or the
 * Redis every instance shares. Redis out of reach is no failure here: the commands
 * fail with its StorageUnavailableError when they use the store.
 */
export async function openCliState(
  config: SluiceConfig,
  opts: { logger: Logger; readOnly?: boolean; db?: Database; withFunctionStore?: boolean },
): Promise<CliState> {
  if (config.state.backend === "redis") {
    const redis = await RedisConnection.open(config.state.url, {
      logger: opts.logger,
      keyPrefix: config.state.keyPrefix,
    });
    return {
      deadLetters: new RedisDeadLetterStore(redis),
      functionStore: opts.withFunctionStore ? new RedisFunctionStore(redis) : undefined,
      close: () => redis.close(),
    };
  }
  const dataDir = config.server.dataDir;
  const deadLetters = opts.readOnly
    ? SqliteDeadLetterStore.openReadOnly(dataDir)
    : SqliteDeadLetterStore.open(dataDir);
  let functionStore: SqliteFunctionStore | undefined;
  if (opts.withFunctionStore) {
    if (!opts.db) throw new Error("the function store needs the state database");
    functionStore = new SqliteFunctionStore(opts.db, {
      onError: (err) => opts.logger.error({ err }, "function store failed"),
    });
  }
  return {
    deadLetters,
    functionStore,
    async close() {
      functionStore?.close();
      deadLetters.close();
    },
  };
}
