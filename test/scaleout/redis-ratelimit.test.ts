import { afterEach, describe, expect, test } from "bun:test";
import pino from "pino";
import { RedisRateLimiter } from "../../src/ratelimit/redis.ts";
import { RedisConnection } from "../../src/state/redis.ts";
import { StorageUnavailableError } from "../../src/storage/unavailable.ts";
import { freshPrefix, serversMissing } from "./fixtures.ts";
import { type ServerProcess, startRedisServer } from "./servers.ts";

const silent = pino({ level: "silent" });
let redis: ServerProcess | undefined;
const conns: RedisConnection[] = [];
afterEach(async () => {
  for (const c of conns.splice(0)) await c.close();
  await redis?.cleanup();
  redis = undefined;
});

async function connect(url: string, prefix: string) {
  const c = await RedisConnection.open(url, { logger: silent, keyPrefix: prefix });
  conns.push(c);
  return c;
}

/** Polls `check` until it holds or `ms` pass. */
async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(20);
  }
}

describe.skipIf(Boolean(serversMissing))("Redis rate limiter across instances", () => {
  test("three instances hammering one key together allow exactly the burst, on Redis's clock", async () => {
    redis = await startRedisServer();
    const prefix = freshPrefix("shared");
    // Three connections stand for three sluice instances; no injected clock: Redis TIME.
    const limiters = await Promise.all(
      [0, 1, 2].map(async () => new RedisRateLimiter(await connect(redis!.url, prefix))),
    );
    const spec = { eventsPerSecond: 0.001, burst: 50 };
    const decisions = await Promise.all(
      Array.from({ length: 150 }, (_, i) => limiters[i % 3]!.take("wk", 1, spec)),
    );
    const allowed = decisions.filter((d) => d.allowed);
    expect(allowed).toHaveLength(50);
    // Every allowed request saw a distinct count of tokens left: one bucket, no lost update.
    expect(new Set(allowed.map((d) => d.remaining)).size).toBe(50);
    const refused = decisions.find((d) => !d.allowed)!;
    expect(refused.retryAfter).toBeGreaterThanOrEqual(1);
    expect(refused.limit).toBe(50);
  });

  test("Redis down: take fails at once as unavailable, health says so; back up: works without a new connection", async () => {
    redis = await startRedisServer();
    const conn = await connect(redis.url, freshPrefix("outage"));
    const limiter = new RedisRateLimiter(conn);
    const spec = { eventsPerSecond: 1, burst: 10 };
    expect((await limiter.take("wk", 3, spec)).remaining).toBe(7);
    await redis.kill();
    const started = Date.now();
    let failure: unknown;
    await until(async () => {
      try {
        await limiter.take("wk", 1, spec);
        return false;
      } catch (err) {
        failure = err;
        return true;
      }
    });
    expect(failure).toBeInstanceOf(StorageUnavailableError);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(conn.health().ok).toBe(false);
    expect(conn.health().error).toContain("redis 127.0.0.1:");
    await redis.start(); // the AOF brings the bucket back; the script cache is empty
    await until(() => conn.health().ok);
    const after = await limiter.take("wk", 1, spec);
    expect(after.allowed).toBe(true);
    expect(after.remaining).toBeLessThanOrEqual(7);
  }, 30_000);

  test("a hung Redis (SIGSTOP) is noticed: commands fail instead of hanging, and recover on SIGCONT", async () => {
    redis = await startRedisServer();
    const conn = await RedisConnection.open(redis.url, {
      logger: silent,
      keyPrefix: freshPrefix("hung"),
      commandTimeoutMs: 300,
      pingIntervalMs: 100,
    });
    conns.push(conn);
    const limiter = new RedisRateLimiter(conn);
    const spec = { eventsPerSecond: 1, burst: 10 };
    await limiter.take("wk", 1, spec);
    const pid = redis.pid!;
    process.kill(pid, "SIGSTOP");
    try {
      const pendingTake = limiter.take("wk", 1, spec).then(
        () => "answered",
        (err) => (err instanceof StorageUnavailableError ? "unavailable" : String(err)),
      );
      expect(await pendingTake).toBe("unavailable");
      expect(conn.health().ok).toBe(false);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await until(() => conn.health().ok);
    expect((await limiter.take("wk", 1, spec)).allowed).toBe(true);
  }, 30_000);
});
