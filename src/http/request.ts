import type { Server } from "bun";
import type { ResolvedKey } from "../auth/resolve.ts";
import { badRequest, SluiceError, tooLarge } from "../errors.ts";
import { isJsonObject } from "../events/json.ts";
import { type RateDecision, rateLimitHeaders } from "../ratelimit/interface.ts";
import type { HttpDeps } from "./deps.ts";

/**
 * Charges `cost` events to the key's bucket and sets the X-RateLimit-* headers;
 * throws 429 (with Retry-After) when the request does not fit. With cost 0 and
 * `atLeast`, charges nothing but refuses when fewer than `atLeast` tokens are left
 * (a batch before its size is known).
 */
export async function chargeRate(
  deps: HttpDeps,
  key: ResolvedKey,
  cost: number,
  headers: Record<string, string | number>,
  atLeast = 0,
): Promise<void> {
  const spec = key.source.rateLimit;
  let decision = await deps.limiter.take(key.keyId, cost, spec);
  if (decision.allowed && decision.remaining < atLeast) {
    // Tokens are below `atLeast` by less than `atLeast`: that many refill within this.
    const retryAfter = Math.max(1, Math.ceil(atLeast / spec.eventsPerSecond));
    decision = { ...decision, allowed: false, retryAfter };
  }
  setRateHeaders(headers, decision);
  if (!decision.allowed) {
    deps.onRateLimited?.(key, cost || atLeast, headers["x-request-id"] as string | undefined);
    throw new SluiceError("rate_limited", "rate limit exceeded", {
      retryAfter: decision.retryAfter,
    });
  }
}

/** Gives back `cost` tokens charged to a request that then failed before it stored anything. */
export async function refundRate(
  deps: HttpDeps,
  key: ResolvedKey,
  cost: number,
  headers: Record<string, string | number>,
): Promise<void> {
  setRateHeaders(headers, await deps.limiter.take(key.keyId, -cost, key.source.rateLimit));
}

function setRateHeaders(headers: Record<string, string | number>, decision: RateDecision) {
  Object.assign(headers, rateLimitHeaders(decision));
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
