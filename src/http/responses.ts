import { type Static, Type as t } from "@sinclair/typebox";

/**
 * Response bodies of the public endpoints, as TypeBox schemas. Routes declare them
 * (`response: { 200: OkResponse, … }`): Elysia checks each 2xx answer against its
 * schema, and the OpenAPI document is generated from them. A schema with an `$id` is
 * a named component of the document (`#/components/schemas/<$id>`); its description
 * is the answer's description unless the route gives one.
 */

/** A single event accepted (or a duplicate of a stored one). */
export const OkResponse = t.Object(
  { ok: t.Literal(true), success: t.Literal(true) },
  { $id: "OkResponse", description: "Stored (or a duplicate of a stored event)." },
);
export type OkResponse = Static<typeof OkResponse>;

/** The answer to a stored single event (or a duplicate); the same object every time. */
export const SINGLE_OK = Object.freeze({ ok: true, success: true } as const);

/** One event of a batch that was not stored, and why. */
export const Rejection = t.Object(
  {
    index: t.Integer({ minimum: 0 }),
    messageId: t.Optional(t.String()),
    error: t.String(),
  },
  { $id: "Rejection" },
);
export type Rejection = Static<typeof Rejection>;

/** The answer to `/v1/batch`: 200 with success true, or 400 when every event is invalid. */
export const BatchResult = t.Object(
  {
    success: t.Boolean(),
    ok: t.Boolean(),
    received: t.Integer({ minimum: 0 }),
    accepted: t.Integer({ minimum: 0 }),
    duplicates: t.Integer({ minimum: 0 }),
    rejected: t.Array(Rejection),
  },
  { $id: "BatchResult", description: "What was stored, what was a duplicate, what was rejected." },
);
export type BatchResult = Static<typeof BatchResult>;

/** Every error body; internal errors read `error# <id>: internal error`. */
export const ErrorBody = t.Object(
  {
    error: t.String(),
    retryAfter: t.Optional(t.Integer({ minimum: 1, description: "on 429: seconds to wait" })),
  },
  { $id: "Error", additionalProperties: true },
);
export type ErrorBody = Static<typeof ErrorBody>;

/** `/health` and `/ready`. */
export const HealthBody = t.Object(
  { ok: t.Boolean(), error: t.Optional(t.String()) },
  { $id: "Health" },
);
export type HealthBody = Static<typeof HealthBody>;

/** `/v1/config`: the source's device-mode destinations. */
export const DeviceConfig = t.Object(
  {
    sourceId: t.String(),
    destinations: t.Array(
      t.Object({
        id: t.String(),
        type: t.Literal("device"),
        name: t.String(),
        options: t.Record(t.String(), t.Unknown()),
      }),
    ),
  },
  { $id: "DeviceConfig", description: "Device-mode destinations." },
);
export type DeviceConfig = Static<typeof DeviceConfig>;

/** `/v1/projects/{writeKey}/settings`: Segment's CDN settings shape. */
export const SegmentSettings = t.Object(
  {
    integrations: t.Record(t.String(), t.Unknown()),
    plan: t.Record(t.String(), t.Unknown()),
  },
  { $id: "SegmentSettings", additionalProperties: true, description: "Settings." },
);
export type SegmentSettings = Static<typeof SegmentSettings>;

/** `/sourceConfig`: RudderStack's JS SDK v3 start-up config. */
export const RudderSourceConfig = t.Object(
  {
    source: t.Object({
      id: t.String(),
      name: t.String(),
      enabled: t.Literal(true),
      workspaceId: t.String(),
      config: t.Record(t.String(), t.Unknown()),
      destinations: t.Array(
        t.Object({
          id: t.String(),
          name: t.String(),
          enabled: t.Boolean(),
          config: t.Record(t.String(), t.Unknown()),
          destinationDefinitionId: t.String(),
          destinationDefinition: t.Object({ name: t.String(), displayName: t.String() }),
          shouldApplyDeviceModeTransformation: t.Boolean(),
          propagateEventsUntransformedOnError: t.Boolean(),
        }),
      ),
    }),
  },
  { $id: "RudderSourceConfig", description: "The source." },
);
export type RudderSourceConfig = Static<typeof RudderSourceConfig>;

/** `/api/funcs/{conId}`: the chain's output events, its exec log and captured logs. */
export const FunctionRunResult = t.Object(
  {
    events: t.Array(t.Record(t.String(), t.Unknown())),
    execLog: t.Array(
      t.Object({
        eventIndex: t.Integer({ minimum: 0 }),
        functionId: t.String(),
        ms: t.Number({ minimum: 0 }),
        error: t.Optional(t.Object({ name: t.String(), message: t.String() })),
        dropped: t.Optional(t.Literal(true)),
      }),
    ),
    logs: t.Array(
      t.Object({
        level: t.String(),
        functionId: t.String(),
        functionType: t.Literal("udf"),
        message: t.String(),
        args: t.Array(t.Unknown()),
        timestamp: t.String(),
      }),
    ),
  },
  { $id: "FunctionRunResult", description: "The chain's output." },
);
export type FunctionRunResult = Static<typeof FunctionRunResult>;

/**
 * A text answer of another media type (`/metrics`, `/p.js`): the document lists it
 * under `mediaType`. A handler that answers bytes returns a `Response` (which Elysia
 * does not check against the schema).
 */
export const TextBody = (mediaType: string, description: string) =>
  t.String({ contentMediaType: mediaType, description });

/** An answer without a body (204, 304); the handler returns `new Response(null, …)`. */
export const NoBody = (description: string) => t.Void({ description });
