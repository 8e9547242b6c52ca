import { ValidationError } from "elysia";
import { type ErrorCode, ShuttingDownError, SluiceError, StorageError } from "../errors.ts";
import { FunctionTimeoutError } from "../functions/errors.ts";
import { UNAVAILABLE_RETRY_AFTER_S, unavailableOf } from "../storage/unavailable.ts";
import type { HttpDeps } from "./deps.ts";
import { requestIdOf, routeOf } from "./observe.ts";

/** The HTTP status of each error code (src/errors.ts). */
export const ERROR_STATUS: Record<ErrorCode, number> = {
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
};

/** What Elysia hands an onError hook, as far as the mapper reads it. */
interface ErrorContext {
  error: unknown;
  code: unknown;
  request: Request;
  set: { status?: number | string; headers: Record<string, unknown> };
  route?: string;
}

/** An error mapped to its answer: the status, the body, and how to log it. */
interface Mapped {
  status: number;
  body: Record<string, unknown>;
  /** Internal: logged at error level with the stack, answered masked. */
  internal?: boolean;
  /** A 503's `Retry-After`, in seconds (UNAVAILABLE_RETRY_AFTER_S unless the error says). */
  retryAfter?: number;
}

/**
 * The one place errors become answers (the app's onError): each error to its status and
 * `{"error": …}` body, one log line per failed request. Handlers never build error
 * JSON. Internal errors are answered masked (`error# a1b2c3: internal error`) and
 * logged with that id and the stack. Elysia's own validation error (which echoes the
 * input) never leaves: a bad parameter is named, its value is not. Log lines carry the
 * route pattern, never the path: a path may hold a write key (`/v1/KEY`), matched or not.
 * Every 503 carries `Retry-After` (seconds), so that SDKs and proxies wait and retry.
 */
export function errorHandler(deps: Pick<HttpDeps, "logger" | "lifecycle">) {
  return (ctx: ErrorContext) => {
    const mapped = mapError(ctx.error, ctx.code, deps.lifecycle.shuttingDown);
    const { set, request } = ctx;
    set.status = mapped.status;
    if (mapped.status === 503) {
      set.headers["retry-after"] = String(mapped.retryAfter ?? UNAVAILABLE_RETRY_AFTER_S);
    }
    const line = {
      requestId: requestIdOf(set),
      method: request.method,
      route: routeOf(ctx.route),
      status: mapped.status,
    };
    if (mapped.internal) {
      const errorId = newErrorId();
      deps.logger.error({ ...line, errorId, err: ctx.error }, "request failed: internal error");
      return { error: `error# ${errorId}: internal error` };
    }
    // One line per failed request (SPEC 10), a 429 too; the `rate limited` warning with
    // the key is what RefusalLog thins out to one a second.
    deps.logger.info({ ...line, reason: mapped.body.error }, "request failed");
    return mapped.body;
  };
}

function mapError(error: unknown, code: unknown, shuttingDown: boolean): Mapped {
  if (error instanceof SluiceError) {
    return {
      status: ERROR_STATUS[error.code],
      body: { error: error.message, ...(error.details ?? {}) },
    };
  }
  if (error instanceof FunctionTimeoutError) {
    const details = error.functionId === undefined ? {} : { functionId: error.functionId };
    return { status: ERROR_STATUS.timeout, body: { error: error.message, ...details } };
  }
  if (error instanceof ShuttingDownError) return { status: 503, body: { error: error.message } };
  if (code === "NOT_FOUND") return { status: 404, body: { error: "not found" } };
  if (error instanceof ValidationError) {
    // An answer that does not match its declared schema is a bug of ours, not the client's.
    if (error.type === "response") return { status: 500, body: {}, internal: true };
    const where = error.valueError?.path.replace(/^\//, "").replaceAll("/", ".") || error.type;
    return { status: 400, body: { error: `invalid ${error.type}: ${where}` } };
  }
  if (code === "PARSE" || code === "INVALID_COOKIE_SIGNATURE") {
    return { status: 400, body: { error: "invalid request" } };
  }
  // A distributed backend (Redis, NATS) out of reach: the client retries (SPEC 9). Logged
  // as a failed request, not an internal error; the body names no host.
  // Retry-After: 1 s for an id another instance is storing, 2 s for a backend down.
  const unavailable = unavailableOf(error);
  if (unavailable) {
    return {
      status: 503,
      body: { error: "storage unavailable, retry" },
      retryAfter: unavailable.retryAfterSeconds,
    };
  }
  // Anything else, storage that cannot write included (disk full, a vanished segment):
  // 500, masked (SPEC 3), or 503 when the log was closed by a stop; /ready is 503
  // meanwhile and the client retries.
  const status = error instanceof StorageError && shuttingDown ? 503 : 500;
  return { status, body: {}, internal: true };
}

/** A short id to find a masked internal error in the log, e.g. `a1b2c3`. */
export function newErrorId(): string {
  return crypto
    .getRandomValues(new Uint8Array(3))
    .reduce((s, b) => s + b.toString(16).padStart(2, "0"), "");
}
