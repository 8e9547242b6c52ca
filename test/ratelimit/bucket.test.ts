import { expect, test } from "bun:test";
import { fullBucket, takeTokens } from "../../src/ratelimit/bucket.ts";

const spec = { eventsPerSecond: 10, burst: 20 };

test("a full bucket allows up to its burst, then refuses without charging", () => {
  let state = fullBucket(spec, 0);
  const first = takeTokens(state, 15, spec, 0);
  expect(first.decision).toMatchObject({ allowed: true, limit: 20, remaining: 5, reset: 2 });
  state = first.state;
  const refused = takeTokens(state, 6, spec, 0);
  expect(refused.decision.allowed).toBe(false);
  expect(refused.decision.remaining).toBe(5);
  // 1 token short at 10/s: 0.1 s, rounded up to the 1-second minimum.
  expect(refused.decision.retryAfter).toBe(1);
  expect(refused.state.tokens).toBe(5);
});

test("tokens refill with time, never past the burst", () => {
  const empty = takeTokens(fullBucket(spec, 0), 20, spec, 0).state;
  expect(empty.tokens).toBe(0);
  const later = takeTokens(empty, 0, spec, 1500);
  expect(later.decision.remaining).toBe(15);
  expect(later.decision.reset).toBe(1);
  const much = takeTokens(empty, 0, spec, 60_000);
  expect(much.decision.remaining).toBe(20);
  expect(much.decision.reset).toBe(0);
});

test("Retry-After is the whole seconds until the request fits", () => {
  const empty = takeTokens(fullBucket(spec, 0), 20, spec, 0).state;
  const d = takeTokens(empty, 15, spec, 0).decision;
  expect(d.allowed).toBe(false);
  expect(d.retryAfter).toBe(2); // 15 tokens at 10/s = 1.5 s -> 2
  const slow = { eventsPerSecond: 0.5, burst: 5 };
  const drained = takeTokens(fullBucket(slow, 0), 5, slow, 0).state;
  expect(takeTokens(drained, 3, slow, 0).decision.retryAfter).toBe(6);
});

test("a request larger than the burst fits only a full bucket and drains it", () => {
  const big = takeTokens(fullBucket(spec, 0), 50, spec, 0);
  expect(big.decision.allowed).toBe(true);
  expect(big.decision.remaining).toBe(0);
  const again = takeTokens(big.state, 50, spec, 1000);
  expect(again.decision.allowed).toBe(false);
  expect(again.decision.retryAfter).toBe(1);
});

test("a clock that goes backwards does not mint tokens", () => {
  const s = takeTokens(fullBucket(spec, 10_000), 20, spec, 10_000).state;
  expect(takeTokens(s, 0, spec, 5_000).decision.remaining).toBe(0);
});
