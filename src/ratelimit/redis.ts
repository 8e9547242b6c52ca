import type { RedisConnection } from "../state/redis.ts";
import type { RateDecision, RateLimiter, RateSpec } from "./interface.ts";
import { TAKE_SCRIPT } from "./redis-script.ts";

export interface RedisRateLimiterOptions {
  /** The clock (ms) for tests; by default the script reads Redis's own clock. */
  now?: () => number;
}

/**
 * Token buckets in Redis, shared by every sluice instance (SPEC 6, 9): one atomic
 * script per request checks and charges the key's bucket, so N instances together
 * allow exactly the configured rate and burst, not N times it. A refused request
 * takes no tokens. Redis unreachable: `take` throws StorageUnavailableError (503).
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly prefix: string;

  constructor(
    private readonly redis: RedisConnection,
    private readonly opts: RedisRateLimiterOptions = {},
  ) {
    this.prefix = `${redis.keyPrefix}:rl:`;
  }

  async take(keyId: string, cost: number, spec: RateSpec): Promise<RateDecision> {
    const now = this.opts.now ? String(this.opts.now()) : "";
    const answer = await this.redis.eval(
      TAKE_SCRIPT,
      [this.prefix + keyId],
      [String(cost), String(spec.eventsPerSecond), String(spec.burst), now],
    );
    const [allowed, remaining, reset, retryAfter] = answer as number[];
    return {
      allowed: allowed === 1,
      limit: spec.burst,
      remaining: Number(remaining),
      reset: Number(reset),
      retryAfter: Number(retryAfter),
    };
  }

  /** The connection is shared; its owner closes it. */
  async close(): Promise<void> {}
}
