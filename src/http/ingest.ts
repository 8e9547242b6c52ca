import { Elysia } from "elysia";
import { EVENT_TYPES, type EventType } from "../events/schema.ts";
import type { HttpDeps } from "./deps.ts";
import { badRequest, HttpError } from "./errors.ts";
import { authenticate, chargeRate, clientIp, singleEvent } from "./request.ts";

/**
 * Jitsu's one-letter type aliases, and `event` (take the type from the payload). A Map,
 * not an object literal: `/api/s/constructor` must not find Object.prototype's.
 */
const JITSU_TYPES = new Map<string, EventType | "event">([
  ...EVENT_TYPES.map((t): [string, EventType] => [t, t]),
  ...EVENT_TYPES.map((t): [string, EventType] => [t[0]!, t]),
  ["event", "event"],
  ["e", "event"],
]);

export const SINGLE_OK = { ok: true, success: true } as const;

/**
 * Accepts one event on a single-event route: authenticates, charges the rate limit,
 * stores it with `pathType` (when given) as its type. 200 `SINGLE_OK`, or an HttpError.
 */
export async function acceptOne(
  deps: HttpDeps,
  request: Request,
  server: Parameters<typeof clientIp>[1],
  headers: Record<string, string | number>,
  pathType: EventType | undefined,
  serverOnly = false,
) {
  const { key, body, bytes } = await authenticate(request, deps, headers);
  if (serverOnly && key.type !== "server") {
    throw new HttpError("unauthorized", "this endpoint needs a server write key");
  }
  await chargeRate(deps, key, 1, headers);
  const event = singleEvent(body, bytes, deps.config.limits.maxEventBytes);
  const result = await deps.ingest.ingest({
    key,
    items: [event],
    itemBytes: [bytes],
    requestId: headers["x-request-id"] as string | undefined,
    type: pathType,
    receivedAt: Date.now(),
    requestIp: clientIp(request, server, deps.config.server.trustProxy),
    userAgent: request.headers.get("user-agent") ?? undefined,
  });
  const rejection = result.rejected[0];
  if (rejection) throw badRequest(rejection.error);
  return SINGLE_OK;
}

/**
 * Single-event endpoints: Jitsu's `/api/s/{type}` and `/api/s/s2s/{type}`, and
 * Segment's `/v1/{type}`. The path's type overrides the payload's, except `event`.
 */
export function ingestRoutes(deps: HttpDeps) {
  const jitsuType = (name: string): EventType | undefined => {
    const t = JITSU_TYPES.get(name);
    // Not echoed: a client that puts its write key in the path would see it logged.
    if (!t) throw new HttpError("not_found", "unknown event type");
    return t === "event" ? undefined : t;
  };

  const app = new Elysia({ name: "ingest" })
    .post(
      "/api/s/s2s/:type",
      ({ request, server, set, params }) =>
        acceptOne(deps, request, server, set.headers, jitsuType(params.type), true),
      { parse: "none" },
    )
    .post(
      "/api/s/:type",
      ({ request, server, set, params }) =>
        acceptOne(deps, request, server, set.headers, jitsuType(params.type), false),
      { parse: "none" },
    );
  for (const type of EVENT_TYPES) {
    app.post(
      `/v1/${type}`,
      ({ request, server, set }) => acceptOne(deps, request, server, set.headers, type, false),
      { parse: "none" },
    );
  }
  return app;
}
