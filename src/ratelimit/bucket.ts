import type { RateDecision, RateSpec } from "./interface.ts";

/** A token bucket's state: tokens at `updatedAt` (ms). */
export interface BucketState {
  tokens: number;
  updatedAt: number;
}

/** A new, full bucket. */
export function fullBucket(spec: RateSpec, now: number): BucketState {
  return { tokens: spec.burst, updatedAt: now };
}

/**
 * Token-bucket arithmetic, pure: refills `state` up to `now`, then takes `cost`
 * tokens if they are there. A request costing more than the whole burst is charged
 * the burst (it fits only into a full bucket) rather than refused for ever; a negative
 * cost gives tokens back, up to the burst.
 */
export function takeTokens(
  state: BucketState,
  cost: number,
  spec: RateSpec,
  now: number,
): { state: BucketState; decision: RateDecision } {
  const elapsed = Math.max(0, now - state.updatedAt) / 1000;
  const tokens = Math.min(spec.burst, state.tokens + elapsed * spec.eventsPerSecond);
  const charge = Math.min(cost, spec.burst);
  const allowed = tokens >= charge;
  // A negative cost is a refund (a request charged before it failed): never past the burst.
  const left = allowed ? Math.min(spec.burst, tokens - charge) : tokens;
  const decision: RateDecision = {
    allowed,
    limit: spec.burst,
    remaining: Math.floor(left),
    reset: Math.ceil((spec.burst - left) / spec.eventsPerSecond),
    retryAfter: allowed ? 0 : Math.max(1, Math.ceil((charge - tokens) / spec.eventsPerSecond)),
  };
  return { state: { tokens: left, updatedAt: now }, decision };
}
