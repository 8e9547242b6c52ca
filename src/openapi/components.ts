import { ADMIN_SECURITY_SCHEME } from "../admin/http/openapi.ts";

type Json = Record<string, unknown>;

/** Security schemes: the four ways a write key may be sent besides the body. */
export const SECURITY_SCHEMES: Record<string, Json> = {
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

/** Any one of the write-key schemes authenticates (a `writeKey` body field does too, on POST routes). */
export const WRITE_KEY_SECURITY = [
  "basicAuth",
  "bearerAuth",
  "writeKeyHeader",
  "writeKeyQuery",
].map((name) => ({ [name]: [] }));

const header = (name: string) => ({ $ref: `#/components/headers/${name}` });

/** On every answer. */
export const REQUEST_ID_HEADER = { "X-Request-Id": header("RequestId") };

/** On every answer of a route that takes a write key, once the key is known. */
export const RATE_LIMIT_HEADERS = {
  "X-RateLimit-Limit": header("RateLimitLimit"),
  "X-RateLimit-Remaining": header("RateLimitRemaining"),
  "X-RateLimit-Reset": header("RateLimitReset"),
};

/** On a 429 and a 503. */
export const RETRY_AFTER_HEADER = { "Retry-After": header("RetryAfter") };

const intHeader = (description: string) => ({ description, schema: { type: "integer" } });

/** The `components` section of the document, around the schemas the routes named. */
export function components(schemas: Record<string, Json>): Json {
  return {
    schemas,
    securitySchemes: { ...SECURITY_SCHEMES, ...ADMIN_SECURITY_SCHEME },
    headers: {
      RequestId: {
        description: "The request's id; every log line about the request carries it.",
        schema: { type: "string" },
      },
      RateLimitLimit: intHeader("The bucket's capacity (burst)."),
      RateLimitRemaining: intHeader("Whole tokens left after this request."),
      RateLimitReset: intHeader("Seconds until the bucket is full again."),
      RetryAfter: intHeader(
        "Seconds to wait before retrying: on a 429 until the request would fit (at least 1); on a 503 1 (a messageId another instance is storing) or 2 (shutting down, a backend out of reach).",
      ),
    },
  };
}
