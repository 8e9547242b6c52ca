/**
 * When a failed delivery is tried again (SPEC 8). Transient failures are retried with
 * capped exponential backoff and jitter for as long as the connection has been failing
 * less than its retry window; past the window, the batch goes to the dead letters.
 *
 * Defaults, and why:
 * - first wait 1 s, doubling (1, 2, 4 … s): a blip costs a second, not a minute;
 * - waits capped at 60 s: once a destination is back, its events flow again within a
 *   minute, and a dead one costs one request a minute;
 * - a window of 24 hours: a receiver down for a night, a database in a maintenance
 *   window or a deploy gone wrong is caught up without anyone acting, while a
 *   destination that is really gone shows as `failing` with dead letters the next day
 *   instead of holding its events back unseen for the whole log retention (7 days).
 *   The events wait in the log meanwhile: retention never deletes what a connection
 *   has not delivered.
 * Jitter keeps each wait in [½·w, w], so many connections failing together do not
 * retry in lock step.
 */
export interface RetryPolicy {
  /** The first wait; each later one doubles. */
  baseMs: number;
  /** No backoff wait is longer than this (a Retry-After may ask for more). */
  maxDelayMs: number;
  /** A connection failing for longer than this dead-letters the batch it is on. */
  retryForMs: number;
  /** At most this many attempts per batch (none by default: the window decides). */
  maxAttempts: number;
}

export const RETRY_DEFAULTS: RetryPolicy = {
  baseMs: 1000,
  maxDelayMs: 60_000,
  retryForMs: 24 * 3_600_000,
  maxAttempts: Number.POSITIVE_INFINITY,
};

/** The retry settings a destination's config may carry (all optional). */
export interface RetrySettings {
  retryBaseMs?: number;
  retryMaxDelayMs?: number;
  retryForSeconds?: number;
  maxAttempts?: number;
}

/** A destination's retry policy: its own settings over the defaults. */
export function retryPolicy(settings: RetrySettings): RetryPolicy {
  return {
    baseMs: settings.retryBaseMs ?? RETRY_DEFAULTS.baseMs,
    maxDelayMs: settings.retryMaxDelayMs ?? RETRY_DEFAULTS.maxDelayMs,
    retryForMs:
      settings.retryForSeconds === undefined
        ? RETRY_DEFAULTS.retryForMs
        : settings.retryForSeconds * 1000,
    maxAttempts: settings.maxAttempts ?? RETRY_DEFAULTS.maxAttempts,
  };
}

/** The jittered wait before attempt `attempt + 1`: in [½·w, w], w = min(max, base·2^(attempt-1)). */
export function backoffMs(policy: RetryPolicy, attempt: number, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export interface FailedAttempt {
  /** Attempts made on this batch so far (1 after the first). */
  attempt: number;
  /** When the connection started failing (its first failure since the last success). */
  failingSince: number;
  now: number;
  /** What the destination asked for (Retry-After), if anything. */
  retryAfterMs?: number;
  random?: () => number;
}

/** Try again after `retryInMs`, or give up (the batch goes to the dead letters). */
export type RetryDecision = { retryInMs: number } | { giveUp: string };

/**
 * What to do after a transient failure. The last wait is cut to the window's end, so
 * the final attempt is made right at the deadline rather than skipped.
 */
export function afterFailure(policy: RetryPolicy, failed: FailedAttempt): RetryDecision {
  if (failed.attempt >= policy.maxAttempts) {
    return { giveUp: `gave up after ${failed.attempt} attempts (maxAttempts)` };
  }
  const failingFor = failed.now - failed.failingSince;
  const remaining = policy.retryForMs - failingFor;
  if (remaining <= 0) {
    return {
      giveUp: `gave up: failing for ${duration(failingFor)}, past the retry window of ${duration(policy.retryForMs)}`,
    };
  }
  const wait = failed.retryAfterMs ?? backoffMs(policy, failed.attempt, failed.random);
  return { retryInMs: Math.max(0, Math.min(wait, remaining)) };
}

/** A Retry-After header (seconds or an HTTP date) in ms, if present and sane. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** "90 ms", "12 s", "3 min", "24 h": for log lines. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}
