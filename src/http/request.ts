import type { Server } from "bun";
import type { ResolvedKey } from "../auth/resolve.ts";
import { badRequest, SluiceError, tooLarge } from "../errors.ts";
import { isJsonObject } from "../events/json.ts";
import { type RateDecision, setRateLimitHeaders } from "../ratelimit/interface.ts";
import type { HttpDeps } from "./deps.ts";

/**
 * Charges `cost` events to the key's bucket and sets the X-RateLimit-* headers;
 * throws 429 (with Retry-After) when the request does not fit. With cost 0 and
 * `atLeast`, charges nothing but refuses when fewer than `atLeast` tokens are left
 * (a batch before its size is known). Synchronous when the limiter is (the embedded
 * one): no promise for the caller to wait on, and a 429 thrown at once.
 */
export function chargeRate(
  deps: HttpDeps,
  key: ResolvedKey,
  cost: number,
  headers: Record<string, string | number>,
  atLeast = 0,
): Promise<void> | undefined {
  const taken = deps.limiter.take(key.keyId, cost, key.source.rateLimit);
  if (taken instanceof Promise) {
    return taken.then((decision) => settle(deps, key, cost, headers, atLeast, decision));
  }
  settle(deps, key, cost, headers, atLeast, taken);
  return undefined;
}

function settle(
  deps: HttpDeps,
  key: ResolvedKey,
  cost: number,
  headers: Record<string, string | number>,
  atLeast: number,
  taken: RateDecision,
): void {
  let decision = taken;
  if (decision.allowed && decision.remaining < atLeast) {
    // Tokens are below `atLeast` by less than `atLeast`: that many refill within this.
    const retryAfter = Math.max(1, Math.ceil(atLeast / key.source.rateLimit.eventsPerSecond));
    decision = { ...decision, allowed: false, retryAfter };
  }
  setRateLimitHeaders(headers, decision);
  if (!decision.allowed) {
    const requestId = headers["x-request-id"] as string | undefined;
    const refused = cost || atLeast;
    deps.onRateLimited?.(key, refused, requestId);
    // The warning with the key: at most one per key and second (RefusalLog); the
    // error mapper still writes the request's own "request failed" line.
    const unlogged = deps.refusals ? deps.refusals.refused(key.keyId) : 0;
    if (unlogged !== undefined) {
      deps.logger.warn(
        { requestId, sourceId: key.source.id, keyId: key.keyId, cost: refused, unlogged },
        "rate limited",
      );
    }
    throw rateLimited(decision.retryAfter);
  }
}

/** A 429 (logged by the error mapper as any failed request). */
export class RateLimitedError extends SluiceError {
  constructor(retryAfter: number) {
    super("rate_limited", "rate limit exceeded", { retryAfter });
  }
}

/** A RateLimitedError without a stack: nobody reads it, and capturing one was 4% of a refusal's CPU. */
function rateLimited(retryAfter: number): RateLimitedError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new RateLimitedError(retryAfter);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Gives back `cost` tokens charged to a request that then failed before it stored anything. */
export async function refundRate(
  deps: HttpDeps,
  key: ResolvedKey,
  cost: number,
  headers: Record<string, string | number>,
): Promise<void> {
  setRateLimitHeaders(headers, await deps.limiter.take(key.keyId, -cost, key.source.rateLimit));
}

/** The client's address: the socket's, or X-Forwarded-For / X-Real-IP behind a trusted proxy. */
export function clientIp(request: Request, server: Server<unknown> | null, trustProxy: boolean) {
  if (trustProxy) {
    const forwarded = request.headers.get("x-forwarded-for")?.split(",")[0]?.trim();
    if (forwarded) return forwarded;
    const real = request.headers.get("x-real-ip")?.trim();
    if (real) return real;
  }
  const address = server?.requestIP(request)?.address;
  return address?.startsWith("::ffff:") ? address.slice(7) : address;
}

/**
 * The body of a single-event endpoint: one JSON object (400 otherwise) of at most
 * `maxEventBytes` (413 otherwise).
 */
export function singleEvent(body: unknown, bytes: number, maxEventBytes: number) {
  if (!isJsonObject(body)) throw badRequest("body must be a JSON object (one event)");
  if (bytes > maxEventBytes) throw tooLarge(`event exceeds ${maxEventBytes} bytes`);
  return body;
}
