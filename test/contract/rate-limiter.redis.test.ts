import { describe } from "bun:test";
import { RedisRateLimiter } from "../../src/ratelimit/redis.ts";
import { fileServers, freshPrefix, serversMissing } from "../scaleout/fixtures.ts";
import { rateLimiterContract } from "./rate-limiter.ts";

const servers = fileServers();

describe.skipIf(Boolean(serversMissing))("redis", () => {
  rateLimiterContract("redis (one script per request)", async (now) => {
    const prefix = freshPrefix("rate");
    let conn = await servers.redisConnection("rate", prefix);
    let limiter = new RedisRateLimiter(conn, { now });
    return {
      limiter,
      async reopen() {
        await conn.close();
        conn = await servers.redisConnection("rate", prefix);
        limiter = new RedisRateLimiter(conn, { now });
        return limiter;
      },
      async cleanup() {
        await conn.close();
      },
    };
  });
});
