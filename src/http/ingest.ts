import type { DocumentDecoration } from "elysia";
import { badRequest, notFound } from "../errors.ts";
import { AnalyticsEvent, EVENT_SCHEMAS, EVENT_TYPES, type EventType } from "../events/schema.ts";
import type { HttpDeps } from "./deps.ts";
import { requestIdOf } from "./observe.ts";
import { clientIp, singleEvent } from "./request.ts";
import { OkResponse, SINGLE_OK } from "./responses.ts";
import { errors, jsonBody, routeGroup, withOptionalType } from "./route.ts";
import type { WriteKeyContext } from "./write-key.ts";

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

export { SINGLE_OK };

/** The `writeKey` option of a single-event route: one event, a JSON body. */
export const SINGLE_EVENT = { cost: 1, body: "json" } as const;

/** A single-event route's answers (401 and 429 come with the write key). */
export const SINGLE_RESPONSES = { 200: OkResponse, ...errors(400, 403, 413, 415, 503) };

/** The type a Jitsu path names (`/api/s/:type`); 404 for anything else. */
const byJitsuPath = (params: Record<string, string>) => jitsuType(params.type ?? "");

/** The type a Jitsu path names; 404 for anything else (not echoed: it may be a key). */
function jitsuType(name: string): EventType | undefined {
  const t = JITSU_TYPES.get(name);
  if (!t) throw notFound("unknown event type");
  return t === "event" ? undefined : t;
}

/** What a single-event handler takes from Elysia's context. */
export interface SingleRequest extends WriteKeyContext {
  request: Request;
  server: Parameters<typeof clientIp>[1];
  set: { headers: Record<string, string | number> };
}

/**
 * Stores one event (authenticated and read by the `writeKey` macro) with `pathType`
 * (when given) as its type: `SINGLE_OK`, or a 400 naming what is wrong with it.
 */
export async function acceptOne(
  deps: HttpDeps,
  { key, body, bytes, request, server, set }: SingleRequest,
  pathType: EventType | undefined,
) {
  const event = singleEvent(body, bytes, deps.config.limits.maxEventBytes);
  const result = await deps.ingest.ingest({
    key,
    items: [event],
    itemBytes: [bytes],
    requestId: requestIdOf(set),
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
 * The handler of a single-event route; `typeOf` gives the path's type. It takes its
 * context apart in its parameter list: Elysia reads each handler's source to decide
 * what to build per request, and a context handed whole to a function makes it build
 * everything (a headers object, cookies, the query) for every request.
 */
export function singleEventHandler(
  deps: HttpDeps,
  typeOf: (params: Record<string, string>) => EventType | undefined,
) {
  return ({ key, body, bytes, request, server, set, params }: SingleRequest & Routed) =>
    acceptOne(deps, { key, body, bytes, request, server, set }, typeOf(params));
}

/** The path parameters of a route's context. */
interface Routed {
  params: Record<string, string>;
}

/** The OpenAPI `detail` of a Jitsu route. */
function jitsuDetail(serverOnly: boolean): DocumentDecoration {
  return {
    tags: ["ingest"],
    operationId: serverOnly ? "jitsuServerEvent" : "jitsuEvent",
    summary: serverOnly ? "One event, Jitsu style, server-to-server" : "One event, Jitsu style",
    description:
      "The path's type overrides the payload's, except `event` (`e`), which takes the type from the payload." +
      (serverOnly ? " Needs a server write key." : ""),
    parameters: [
      {
        name: "type",
        in: "path",
        required: true,
        description: "Event type or its one-letter alias; another is a 404.",
        schema: { type: "string", enum: [...JITSU_TYPES.keys()] },
      },
    ],
    requestBody: jsonBody(AnalyticsEvent, "One event."),
  };
}

/** `track` → `Track`. */
const capitalised = (type: string) => `${type[0]!.toUpperCase()}${type.slice(1)}`;

/** The OpenAPI `detail` of Segment's `/v1/{type}`. */
export function segmentDetail(type: EventType): DocumentDecoration {
  return {
    tags: ["ingest"],
    operationId: `segment${capitalised(type)}`,
    summary: `One ${type} event, Segment style`,
    description: "The type comes from the path.",
    requestBody: jsonBody(withOptionalType(EVENT_SCHEMAS[type]), `One ${type} event.`),
  };
}

/**
 * Single-event endpoints: Jitsu's `/api/s/{type}` and `/api/s/s2s/{type}`, and
 * Segment's `/v1/{type}`. The path's type overrides the payload's, except `event`.
 */
export function ingestRoutes(deps: HttpDeps) {
  const app = routeGroup("ingest", deps)
    .post("/api/s/s2s/:type", singleEventHandler(deps, byJitsuPath), {
      writeKey: { ...SINGLE_EVENT, serverOnly: true },
      parse: "none",
      response: { ...SINGLE_RESPONSES, ...errors(404) },
      detail: jitsuDetail(true),
    })
    .post("/api/s/:type", singleEventHandler(deps, byJitsuPath), {
      writeKey: SINGLE_EVENT,
      parse: "none",
      response: { ...SINGLE_RESPONSES, ...errors(404) },
      detail: jitsuDetail(false),
    });
  for (const type of EVENT_TYPES) {
    app.post(
      `/v1/${type}`,
      singleEventHandler(deps, () => type),
      {
        writeKey: SINGLE_EVENT,
        parse: "none",
        response: SINGLE_RESPONSES,
        detail: segmentDetail(type),
      },
    );
  }
  return app;
}
