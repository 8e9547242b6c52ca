/**
 * A distributed backend (NATS JetStream, Redis) cannot be reached right now. Nothing of
 * the request it happened in is acknowledged: the HTTP layer answers 503 so that the
 * client (or the load balancer) retries, and `/ready` reports the backend until it
 * answers again. Backends throw this, never an HTTP error: they know nothing of HTTP.
 */
export class StorageUnavailableError extends Error {
  constructor(
    /** Which backend: "redis" or "nats". */
    readonly backend: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${backend} unavailable: ${message}`, options);
    this.name = "StorageUnavailableError";
  }
}

/** Whether `err`, or an error it wraps (`cause`), says a backend is unreachable. */
export function isUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; depth++) {
    if (e instanceof StorageUnavailableError) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
