import type { Server } from "bun";
import type { ResolvedKey } from "../auth/resolve.ts";
import { keyFromBody, keyFromHeaders } from "../auth/resolve.ts";
import { isJsonObject } from "../events/json.ts";
import { rateLimitHeaders } from "../ratelimit/interface.ts";
import { readJsonBody } from "./body.ts";
import { originAllowed } from "./cors.ts";
import type { HttpDeps } from "./deps.ts";
import { badRequest, HttpError, tooLarge, unauthorized } from "./errors.ts";

export interface AuthenticatedBody {
  key: ResolvedKey;
  body: unknown;
  bytes: number;
}

/**
 * Reads the body and resolves the write key: headers and query first, the body's
 * `writeKey` only when they carry none. 401 on a missing or unknown key; 403 when a
 * browser key is used from an origin its source does not allow. Once the key is
 * known, `headers` get its X-RateLimit-* values, so an error answer carries them too.
 */
export async function authenticate(
  request: Request,
  deps: HttpDeps,
  headers: Record<string, string | number>,
  /** Accepted Content-Types, when not the ingest endpoints' (see body.ts). */
  types?: Set<string>,
): Promise<AuthenticatedBody> {
  const fromHeaders = keyFromHeaders(request.headers, request.url);
  let key = fromHeaders === undefined ? undefined : deps.keys.resolve(fromHeaders);
  if (fromHeaders !== undefined && !key) throw unauthorized();
  if (key) await chargeRate(deps, key, 0, headers);
  const { value, bytes } = await readJsonBody(request, deps.config.limits, types);
  if (!key) {
    const fromBody = keyFromBody(value);
    key = fromBody === undefined ? undefined : deps.keys.resolve(fromBody);
    if (!key) throw unauthorized();
    await chargeRate(deps, key, 0, headers);
  }
  const origin = request.headers.get("origin");
  if (origin && key.type === "browser" && !originAllowed(key.source, origin)) {
    throw new HttpError("forbidden", "origin not allowed for this source");
  }
  return { key, body: value, bytes };
}

/**
 * Charges `cost` events to the key's bucket and sets the X-RateLimit-* headers;
 * throws 429 (with Retry-After) when the request does not fit.
 */
export async function chargeRate(
  deps: HttpDeps,
  key: ResolvedKey,
  cost: number,
  headers: Record<string, string | number>,
): Promise<void> {
  const decision = await deps.limiter.take(key.keyId, cost, key.source.rateLimit);
  const h = rateLimitHeaders(decision);
  Object.assign(headers, h);
  if (!decision.allowed) {
    deps.onRateLimited?.(key, cost, headers["x-request-id"] as string | undefined);
    throw new HttpError(
      "rate_limited",
      "rate limit exceeded",
      { retryAfter: decision.retryAfter },
      h,
    );
  }
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
 * Resolves the write key of a request without a body (GET): `pathKey` when the route
 * carries it in its path, else headers and query. 401 on a missing or unknown key.
 */
export function authenticateKey(request: Request, deps: HttpDeps, pathKey?: string): ResolvedKey {
  const given = pathKey ?? keyFromHeaders(request.headers, request.url);
  const key = given === undefined ? undefined : deps.keys.resolve(given);
  if (!key) throw unauthorized();
  return key;
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
