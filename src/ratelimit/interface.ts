/** The outcome of charging a request against a write key's bucket (SPEC 6). */
export interface RateDecision {
  allowed: boolean;
  /** X-RateLimit-Limit: the bucket's capacity (burst). */
  limit: number;
  /** X-RateLimit-Remaining: whole tokens left after this request. */
  remaining: number;
  /** X-RateLimit-Reset: whole seconds until the bucket is full again. */
  reset: number;
  /** Retry-After on a refusal: whole seconds until this request would fit, at least 1. */
  retryAfter: number;
}

export interface RateSpec {
  eventsPerSecond: number;
  burst: number;
}

/** Token buckets per write key. A refused request takes no tokens. */
export interface RateLimiter {
  /**
   * Charges `cost` tokens to `keyId`'s bucket, or refuses the whole request. Cost 0
   * only reads the bucket; a negative cost refunds tokens (up to the burst) to a
   * request that was charged before it failed.
   */
  take(keyId: string, cost: number, spec: RateSpec): Promise<RateDecision> | RateDecision;
  close(): Promise<void>;
}

/**
 * Sets the standard rate-limit headers of a decision on a response's headers (in
 * place: one object per request, not one more per charge).
 */
export function setRateLimitHeaders(
  headers: Record<string, string | number>,
  d: RateDecision,
): void {
  headers["x-ratelimit-limit"] = String(d.limit);
  headers["x-ratelimit-remaining"] = String(d.remaining);
  headers["x-ratelimit-reset"] = String(d.reset);
  if (!d.allowed) headers["retry-after"] = String(d.retryAfter);
}
