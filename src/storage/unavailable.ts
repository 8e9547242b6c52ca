/**
 * `Retry-After` of a 503 for a backend out of reach, in seconds. An instance re-checks
 * Redis at least once a second and NATS every 250 ms, so a retry after 2 s finds the
 * return of a server that came back meanwhile; a retry through the load balancer may
 * meet a healthy instance at once, and during a long outage every client retries at most
 * every 2 s (SDKs back off further by themselves).
 */
export const UNAVAILABLE_RETRY_AFTER_S = 2;

/**
 * `Retry-After` of a 503 for a messageId another instance is storing right now: its
 * publish ack is milliseconds away, so the retry a second later is a duplicate (or, when
 * that instance died, stored once its claim lapses). 1 is the smallest whole value.
 */
export const CLAIMED_RETRY_AFTER_S = 1;

/**
 * A distributed backend (NATS JetStream, Redis) cannot be reached right now. Nothing of
 * the request it happened in is acknowledged: the HTTP layer answers 503 so that the
 * client (or the load balancer) retries, and `/ready` reports the backend until it
 * answers again. Backends throw this, never an HTTP error: they know nothing of HTTP.
 */
export class StorageUnavailableError extends Error {
  /** How long the client should wait before it retries (the 503's `Retry-After`). */
  readonly retryAfterSeconds: number;

  constructor(
    /** Which backend: "redis" or "nats". */
    readonly backend: string,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(`${backend} unavailable: ${message}`, options);
    this.retryAfterSeconds = options?.retryAfterSeconds ?? UNAVAILABLE_RETRY_AFTER_S;
    this.name = "StorageUnavailableError";
  }
}

/** Whether `err`, or an error it wraps (`cause`), says a backend is unreachable. */
export function isUnavailable(err: unknown): boolean {
  return unavailableOf(err) !== undefined;
}

/** The StorageUnavailableError that `err` is or wraps (`cause`), if any. */
export function unavailableOf(err: unknown): StorageUnavailableError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; depth++) {
    if (e instanceof StorageUnavailableError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
