import { EVENT_SCHEMAS, EVENT_TYPES } from "../events/schema.ts";
import {
  eventSchemaName,
  RATE_LIMIT_HEADERS,
  ref,
  WRITE_KEY_SECURITY,
  withOptionalType,
} from "./components.ts";

type Json = Record<string, unknown>;

/** One documented operation: the route as Elysia spells it, and its OpenAPI object. */
export interface Operation {
  method: string;
  /** Elysia's pattern, e.g. `/api/s/:type`. */
  path: string;
  doc: Json;
}

export const REQUEST_ID = { "X-Request-Id": { $ref: "#/components/headers/RequestId" } };
const r = (name: string) => ({ $ref: `#/components/responses/${name}` });

export const ok = (description: string, schema: Json, headers: Json = RATE_LIMIT_HEADERS) => ({
  description,
  headers: { ...REQUEST_ID, ...headers },
  content: { "application/json": { schema } },
});

/** The body forms every ingest route reads (SPEC 3, Requests). */
const jsonBody = (schema: Json, description: string) => ({
  required: true,
  description: `${description} Also sent as \`text/plain\` (sendBeacon) or \`application/x-www-form-urlencoded\` (RudderStack); \`Content-Encoding: gzip\` is accepted. A \`writeKey\` field authenticates when no header or query parameter does.`,
  content: { "application/json": { schema }, "text/plain": { schema } },
});

export const authErrors = {
  "401": r("Unauthorized"),
  "429": r("RateLimited"),
  "500": r("Internal"),
  "503": r("Unavailable"),
};

const ingestErrors = {
  "400": r("BadRequest"),
  "403": r("Forbidden"),
  "413": r("TooLarge"),
  ...authErrors,
};

const JITSU_TYPES = [...EVENT_TYPES, ...EVENT_TYPES.map((t) => t[0]!), "event", "e"];

const jitsu = (serverOnly: boolean): Json => ({
  tags: ["ingest"],
  operationId: serverOnly ? "jitsuServerEvent" : "jitsuEvent",
  summary: serverOnly ? "One event, Jitsu style, server-to-server" : "One event, Jitsu style",
  description:
    "The path's type overrides the payload's, except `event` (`e`), which takes the type from the payload." +
    (serverOnly ? " Needs a server write key." : ""),
  security: WRITE_KEY_SECURITY,
  parameters: [
    {
      name: "type",
      in: "path",
      required: true,
      description: "Event type or its one-letter alias.",
      schema: { type: "string", enum: JITSU_TYPES },
    },
  ],
  requestBody: jsonBody(ref("AnalyticsEvent"), "One event."),
  responses: {
    "200": ok("Stored (or a duplicate of a stored event).", ref("OkResponse")),
    ...ingestErrors,
    "404": r("NotFoundType"),
  },
});

export const segment = (type: (typeof EVENT_TYPES)[number]): Operation => ({
  method: "POST",
  path: `/v1/${type}`,
  doc: {
    tags: ["ingest"],
    operationId: `segment${eventSchemaName(type).replace("Event", "")}`,
    summary: `One ${type} event, Segment style`,
    description: "The type comes from the path.",
    security: WRITE_KEY_SECURITY,
    requestBody: jsonBody(withOptionalType(EVENT_SCHEMAS[type]), `One ${type} event.`),
    responses: {
      "200": ok("Stored (or a duplicate of a stored event).", ref("OkResponse")),
      ...ingestErrors,
    },
  },
});

export const batch = (path: string, operationId: string): Operation => ({
  method: "POST",
  path,
  doc: {
    tags: ["ingest"],
    operationId,
    summary: "Many events",
    description:
      "Invalid events are skipped and listed in `rejected`; the rest are stored. The batch's `context` and `integrations` are merged under each event's own.",
    security: WRITE_KEY_SECURITY,
    requestBody: jsonBody(ref("BatchBody"), "A batch of events."),
    responses: {
      "200": ok("At least one event stored or a duplicate.", ref("BatchResult")),
      "400": {
        description:
          "Every event invalid (a BatchResult with `success: false`), or a malformed request.",
        headers: REQUEST_ID,
        content: {
          "application/json": { schema: { oneOf: [ref("BatchResult"), ref("Error")] } },
        },
      },
      "403": r("Forbidden"),
      "413": r("TooLarge"),
      ...authErrors,
    },
  },
});

const open = (doc: Json) => ({ ...doc, security: [] });

/** Every public endpoint of SPEC 3, documented; only those the app serves are published. */
export const OPERATIONS: Operation[] = [
  { method: "POST", path: "/api/s/:type", doc: jitsu(false) },
  { method: "POST", path: "/api/s/s2s/:type", doc: jitsu(true) },
  ...EVENT_TYPES.map(segment),
  batch("/v1/batch", "segmentBatch"),
  batch("/batch", "batch"),
  {
    method: "GET",
    path: "/v1/config",
    doc: {
      tags: ["sdk"],
      operationId: "deviceConfig",
      summary: "The source's device-mode destinations, for browser SDKs",
      security: WRITE_KEY_SECURITY,
      responses: { "200": ok("Device-mode destinations.", ref("DeviceConfig")), ...authErrors },
    },
  },
  {
    method: "GET",
    path: "/v1/projects/:writeKey/settings",
    doc: {
      tags: ["sdk"],
      operationId: "segmentSettings",
      summary: "Segment's CDN settings, so analytics.js can load from sluice",
      description: "The write key is the path parameter.",
      security: [],
      parameters: [{ name: "writeKey", in: "path", required: true, schema: { type: "string" } }],
      responses: { "200": ok("Settings.", ref("SegmentSettings")), ...authErrors },
    },
  },
  {
    method: "POST",
    path: "/api/funcs/:conId",
    doc: {
      tags: ["functions"],
      operationId: "runFunctions",
      summary: "Run a connection's function chain on one event (not stored)",
      security: WRITE_KEY_SECURITY,
      parameters: [
        {
          name: "conId",
          in: "path",
          required: true,
          description: "A connection of the key's source.",
          schema: { type: "string" },
        },
      ],
      requestBody: {
        required: true,
        content: { "application/json": { schema: ref("AnalyticsEvent") } },
      },
      responses: {
        "200": ok("The chain's output.", ref("FunctionRunResult")),
        "204": { description: "The connection has no functions.", headers: REQUEST_ID },
        "400": r("BadRequest"),
        "403": r("Forbidden"),
        "413": r("TooLarge"),
        ...authErrors,
        "504": {
          description: "The pipeline ran over its time limit.",
          headers: REQUEST_ID,
          content: { "application/json": { schema: ref("Error") } },
        },
      },
    },
  },
  {
    method: "GET",
    path: "/health",
    doc: open({
      tags: ["operations"],
      operationId: "health",
      summary: "Liveness",
      responses: { "200": ok("The process serves requests.", ref("Health"), {}) },
    }),
  },
  {
    method: "GET",
    path: "/ready",
    doc: open({
      tags: ["operations"],
      operationId: "ready",
      summary: "Readiness: not shutting down and the event log accepts appends",
      responses: {
        "200": ok("Ready.", ref("Health"), {}),
        "503": {
          description: "Not ready.",
          headers: REQUEST_ID,
          content: { "application/json": { schema: ref("Health") } },
        },
      },
    }),
  },
  {
    method: "GET",
    path: "/metrics",
    doc: open({
      tags: ["operations"],
      operationId: "metrics",
      summary: "Prometheus metrics (text exposition format 0.0.4)",
      responses: {
        "200": {
          description: "Metrics.",
          headers: REQUEST_ID,
          content: { "text/plain": { schema: { type: "string" } } },
        },
      },
    }),
  },
  {
    method: "GET",
    path: "/openapi.json",
    doc: open({
      tags: ["operations"],
      operationId: "openapi",
      summary: "This document",
      responses: {
        "200": {
          description: "OpenAPI 3.1 document.",
          headers: REQUEST_ID,
          content: { "application/json": { schema: { type: "object" } } },
        },
      },
    }),
  },
];

/** The CORS preflight every POST path answers (Elysia serves it as `OPTIONS /*`). */
export function preflight(path: string): Json {
  return {
    tags: ["cors"],
    operationId: `preflight${path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? "").toUpperCase())}`,
    summary: "CORS preflight",
    description:
      "Answers with the Access-Control-Allow-* headers when some source allows the Origin.",
    security: [],
    parameters: [...path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({
      name: m[1],
      in: "path",
      required: true,
      schema: { type: "string" },
    })),
    responses: { "204": { description: "No content.", headers: REQUEST_ID } },
  };
}
