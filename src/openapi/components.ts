import type { TSchema } from "@sinclair/typebox";
import { BatchBody, EVENT_SCHEMAS } from "../events/schema.ts";
import {
  BatchResult,
  DeviceConfig,
  ErrorBody,
  FunctionRunResult,
  HealthBody,
  OkResponse,
  RudderSourceConfig,
  SegmentSettings,
} from "../http/responses.ts";

type Json = Record<string, unknown>;

/** A `$ref` to a component schema. */
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** `track` → `TrackEvent`: the component name of an event type's schema. */
export const eventSchemaName = (type: string) => `${type[0]!.toUpperCase()}${type.slice(1)}Event`;

/**
 * A TypeBox schema as plain JSON Schema (TypeBox's symbols dropped), without the
 * `errorMessage` texts the validator uses: they are not documentation.
 */
export function jsonSchema(schema: TSchema): Json {
  return JSON.parse(JSON.stringify(schema, (k, v) => (k === "errorMessage" ? undefined : v)));
}

/** An event schema whose `type` may be left out (the path gives it). */
export function withOptionalType(schema: TSchema): Json {
  const s = jsonSchema(schema);
  s.required = (s.required as string[] | undefined)?.filter((r) => r !== "type");
  return s;
}

function schemas(): Json {
  const events = Object.fromEntries(
    Object.entries(EVENT_SCHEMAS).map(([type, s]) => [eventSchemaName(type), jsonSchema(s)]),
  );
  const names = Object.keys(EVENT_SCHEMAS);
  const batch = jsonSchema(BatchBody);
  (batch.properties as Json).batch = {
    type: "array",
    items: ref("AnalyticsEvent"),
    description: "The events; at most `limits.maxBatchEvents` (500) of them.",
  };
  return {
    ...events,
    AnalyticsEvent: {
      oneOf: names.map((n) => ref(eventSchemaName(n))),
      discriminator: {
        propertyName: "type",
        mapping: Object.fromEntries(
          names.map((n) => [n, `#/components/schemas/${eventSchemaName(n)}`]),
        ),
      },
    },
    BatchBody: batch,
    OkResponse: jsonSchema(OkResponse),
    BatchResult: jsonSchema(BatchResult),
    Error: jsonSchema(ErrorBody),
    Health: jsonSchema(HealthBody),
    DeviceConfig: jsonSchema(DeviceConfig),
    SegmentSettings: jsonSchema(SegmentSettings),
    RudderSourceConfig: jsonSchema(RudderSourceConfig),
    FunctionRunResult: jsonSchema(FunctionRunResult),
  };
}

const intHeader = (description: string) => ({ description, schema: { type: "integer" } });

/** Security schemes: the four ways a write key may be sent besides the body. */
export const SECURITY_SCHEMES = {
  basicAuth: {
    type: "http",
    scheme: "basic",
    description: "The write key as the user name, empty password: `base64(key:)`.",
  },
  bearerAuth: { type: "http", scheme: "bearer", description: "`Authorization: Bearer <key>`." },
  writeKeyHeader: { type: "apiKey", in: "header", name: "X-Write-Key" },
  writeKeyQuery: {
    type: "apiKey",
    in: "query",
    name: "writeKey",
    description: "`writekey` is accepted too.",
  },
};

/** Any one of the schemes authenticates (a `writeKey` body field does too, on POST routes). */
export const WRITE_KEY_SECURITY = Object.keys(SECURITY_SCHEMES).map((name) => ({ [name]: [] }));

/** Headers on every authenticated answer. */
export const RATE_LIMIT_HEADERS = {
  "X-RateLimit-Limit": { $ref: "#/components/headers/RateLimitLimit" },
  "X-RateLimit-Remaining": { $ref: "#/components/headers/RateLimitRemaining" },
  "X-RateLimit-Reset": { $ref: "#/components/headers/RateLimitReset" },
};

const error = (description: string, extraHeaders: Json = {}) => ({
  description,
  headers: { "X-Request-Id": { $ref: "#/components/headers/RequestId" }, ...extraHeaders },
  content: { "application/json": { schema: ref("Error") } },
});

/** The `components` section of the document. */
export function components(): Json {
  return {
    schemas: schemas(),
    securitySchemes: SECURITY_SCHEMES,
    headers: {
      RequestId: {
        description: "The request's id; every log line about the request carries it.",
        schema: { type: "string" },
      },
      RateLimitLimit: intHeader("The bucket's capacity (burst)."),
      RateLimitRemaining: intHeader("Whole tokens left after this request."),
      RateLimitReset: intHeader("Seconds until the bucket is full again."),
      RetryAfter: intHeader("Seconds until the request would fit (at least 1)."),
    },
    responses: {
      BadRequest: error(
        "Malformed JSON, unsupported content type or encoding, an invalid event, or a batch over the event limit.",
      ),
      Unauthorized: error("Missing or unknown write key."),
      Forbidden: error("A browser key used from an origin its source does not allow."),
      NotFoundType: error("Unknown event type in the path."),
      TooLarge: error(
        "Body (compressed or not) over `maxBodyBytes`, or event over `maxEventBytes`.",
      ),
      RateLimited: error("The write key's bucket has too few tokens; nothing was stored.", {
        "Retry-After": { $ref: "#/components/headers/RetryAfter" },
        ...RATE_LIMIT_HEADERS,
      }),
      Internal: error("Storage or internal failure, masked as `error# <id>: internal error`."),
      Unavailable: error("Shutting down, or storage unavailable while shutting down; retry."),
    },
  };
}
