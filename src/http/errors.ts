/** The closed list of error codes sluice answers with. */
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  not_implemented: 501,
  unavailable: 503,
  timeout: 504,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

/** An error a client caused or should see; mapped to its status and `{"error": …}` by onError. */
export class HttpError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra fields of the error body (never request data). */
    readonly body?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "HttpError";
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export const badRequest = (message: string) => new HttpError("bad_request", message);
export const unauthorized = (message = "missing or unknown write key") =>
  new HttpError("unauthorized", message);
export const tooLarge = (message: string) => new HttpError("payload_too_large", message);

/** Storage (log or state) failed: nothing in the request is acknowledged; the client retries. */
export class StorageError extends Error {
  constructor(cause: unknown) {
    super(`storage failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "StorageError";
  }
}

/** The server is shutting down: 503, and the client retries elsewhere or later. */
export class ShuttingDownError extends Error {
  constructor() {
    super("server is shutting down");
    this.name = "ShuttingDownError";
  }
}

/** A short id to find a masked internal error in the log, e.g. `a1b2c3`. */
export function errorId(): string {
  return crypto
    .getRandomValues(new Uint8Array(3))
    .reduce((s, b) => s + b.toString(16).padStart(2, "0"), "");
}
