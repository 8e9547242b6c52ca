import { afterEach, describe, expect, test } from "bun:test";
import type { RateLimiter } from "../../src/ratelimit/interface.ts";

/**
 * The RateLimiter contract (SPEC 6): one token bucket per write key. A backend's test
 * calls `rateLimiterContract` with a fixture built on an injected clock; `reopen`
 * closes the limiter and opens it on the same storage (a restart).
 */
export interface RateLimiterFixture {
  limiter: RateLimiter;
  reopen(): Promise<RateLimiter>;
  cleanup(): Promise<void>;
}

const spec = { eventsPerSecond: 10, burst: 20 };

export function rateLimiterContract(
  name: string,
  make: (now: () => number) => Promise<RateLimiterFixture>,
): void {
  describe(`RateLimiter contract: ${name}`, () => {
    let fx: RateLimiterFixture | undefined;
    let clock = 1_700_000_000_000;
    const open = async () => {
      clock = 1_700_000_000_000;
      fx = await make(() => clock);
      return fx.limiter;
    };
    afterEach(async () => {
      await fx?.cleanup();
      fx = undefined;
    });

    test("a new key has its burst; a request that does not fit is refused whole and costs nothing", async () => {
      const limiter = await open();
      expect(await limiter.take("k1", 15, spec)).toMatchObject({
        allowed: true,
        limit: 20,
        remaining: 5,
        reset: 2,
      });
      const refused = await limiter.take("k1", 6, spec);
      expect(refused).toMatchObject({ allowed: false, limit: 20, remaining: 5 });
      expect(refused.retryAfter).toBe(1);
      expect(await limiter.take("k1", 5, spec)).toMatchObject({ allowed: true, remaining: 0 });
    });

    test("tokens refill at eventsPerSecond up to the burst; Retry-After is whole seconds, at least 1", async () => {
      const limiter = await open();
      await limiter.take("k1", 20, spec);
      const short = await limiter.take("k1", 15, spec);
      expect(short).toMatchObject({ allowed: false, retryAfter: 2 });
      clock += 1500;
      expect(await limiter.take("k1", 15, spec)).toMatchObject({ allowed: true, remaining: 0 });
      clock += 60_000;
      expect(await limiter.take("k1", 0, spec)).toMatchObject({ remaining: 20, reset: 0 });
    });

    test("cost 0 reads the bucket; a negative cost refunds, never past the burst", async () => {
      const limiter = await open();
      await limiter.take("k1", 12, spec);
      expect(await limiter.take("k1", 0, spec)).toMatchObject({ allowed: true, remaining: 8 });
      expect(await limiter.take("k1", -5, spec)).toMatchObject({ allowed: true, remaining: 13 });
      clock += 1000; // 10 tokens refilled: 20, the burst
      expect(await limiter.take("k1", -5, spec)).toMatchObject({ remaining: 20, reset: 0 });
      expect(await limiter.take("k1", 20, spec)).toMatchObject({ allowed: true, remaining: 0 });
    });

    test("keys have buckets of their own", async () => {
      const limiter = await open();
      await limiter.take("k1", 20, spec);
      expect((await limiter.take("k1", 1, spec)).allowed).toBe(false);
      expect(await limiter.take("k2", 20, spec)).toMatchObject({ allowed: true, remaining: 0 });
    });

    test("a request larger than the burst fits only into a full bucket", async () => {
      const limiter = await open();
      expect(await limiter.take("k1", 50, spec)).toMatchObject({ allowed: true, remaining: 0 });
      expect((await limiter.take("k1", 50, spec)).allowed).toBe(false);
    });

    test("spending survives a restart", async () => {
      const limiter = await open();
      await limiter.take("k1", 18, spec);
      const reopened = await fx!.reopen();
      expect(await reopened.take("k1", 3, spec)).toMatchObject({ allowed: false, remaining: 2 });
    });
  });
}
