/**
 * The errors of sluice's core, free of any transport: services and routes throw them,
 * and one mapper (the HTTP app's onError, src/http/errors.ts) turns each into a status
 * and a `{"error": …}` body. One bad event of a batch is a value (a Rejection), not one
 * of these; `throw` is for a request that cannot go on, bugs and infrastructure.
 */

/** The closed list of error codes sluice answers with. */
export const ERROR_CODES = [
  "bad_request",
  "unauthorized",
  "forbidden",
  "not_found",
  "payload_too_large",
  "unsupported_media_type",
  "rate_limited",
  "internal",
  "not_implemented",
  "unavailable",
  "timeout",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** An error the caller caused or should see, with a code from the closed list. */
export class SluiceError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra fields of the error body (never request data, never a secret). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "SluiceError";
  }
}

export const badRequest = (message: string) => new SluiceError("bad_request", message);
export const unauthorized = (message = "missing or unknown write key") =>
  new SluiceError("unauthorized", message);
export const tooLarge = (message: string) => new SluiceError("payload_too_large", message);
export const notFound = (message: string) => new SluiceError("not_found", message);

/** Storage (log or state) failed: nothing in the request is acknowledged; the client retries. */
export class StorageError extends Error {
  constructor(cause: unknown) {
    super(`storage failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "StorageError";
  }
}

/** The server is shutting down: the client retries elsewhere or later. */
export class ShuttingDownError extends Error {
  constructor() {
    super("server is shutting down");
    this.name = "ShuttingDownError";
  }
}
