import type { TSchema } from "@sinclair/typebox";
import { Elysia } from "elysia";
import type { HttpDeps } from "./deps.ts";
import { ErrorBody } from "./responses.ts";
import { writeKeyAuth } from "./write-key.ts";

/**
 * A route group: an Elysia plugin with the `writeKey` macro. Every route of sluice
 * lives in one, one file per group under `src/http/`, registered in `server.ts`.
 *
 * How to add a route:
 * 1. In the group's file: `routeGroup("name", deps).post(path, handler, options)`.
 * 2. Keep the handler thin: read the input, call a service with plain values (never
 *    Elysia's context), shape the answer. For errors throw a `SluiceError` (or its
 *    helpers `badRequest`, `unauthorized`, … from `src/errors.ts`): the one onError
 *    (`errors.ts`) maps it to its status and `{"error": …}`; never build error JSON.
 * 3. Options:
 *    - `writeKey: { cost, body }` when the route takes a write key: the macro
 *      authenticates, charges the rate limit and reads the body, and the handler gets
 *      `key`, `body`, `bytes` (see `WriteKeyOptions`); the document then lists the key
 *      schemes, 401, 429 and the X-RateLimit-* headers by itself. With `body`, also
 *      `parse: "none"` (the macro reads it: gzip, limits, content types).
 *    - `response`: a TypeBox schema per status, `{ 200: OkResponse, ...errors(400) }`
 *      (`responses.ts`). Elysia checks every 2xx answer against it; answers that are
 *      bytes or empty are returned as a `Response` (`NoBody`, `TextBody`).
 *    - `detail`: `summary` (required), `tags`, `operationId`, `description`, and
 *      `requestBody: jsonBody(Schema, "…")` when the handler reads a body. TypeBox
 *      schemas may appear anywhere in it; those with an `$id` become components.
 *    - `params` / `query` schemas only where Elysia should validate them (a bad one is
 *      a 400 naming the field).
 * 4. `/openapi.json` is generated from these declarations (src/openapi/document.ts);
 *    the OpenAPI test fails for a route without a summary or response schemas.
 */
export function routeGroup(name: string, deps: HttpDeps) {
  return new Elysia({ name }).use(writeKeyAuth(deps));
}

/**
 * Error answers a route can give, for its `response`: each status with the error body
 * (`{"error": …}`). 500 is always possible; a write-key route adds 401 and 429 by
 * itself.
 */
export function errors<const S extends number>(
  ...statuses: S[]
): Record<S | 500, typeof ErrorBody> {
  const out = { 500: ErrorBody } as Record<S | 500, typeof ErrorBody>;
  for (const s of statuses) out[s] = ErrorBody;
  return out;
}

/** The media types every ingest route reads (SPEC 3, Requests). */
const INGEST_MEDIA_TYPES = ["application/json", "text/plain"];

/**
 * Documents a JSON request body that the handler (or the `writeKey` macro) reads itself,
 * for `detail.requestBody`. `strict`: only `application/json` is accepted.
 */
export function jsonBody(
  schema: TSchema | Record<string, unknown>,
  description: string,
  strict = false,
) {
  const mediaTypes = strict ? ["application/json"] : INGEST_MEDIA_TYPES;
  return {
    required: true,
    description: strict
      ? description
      : `${description} Also sent as \`text/plain\` (sendBeacon) or \`application/x-www-form-urlencoded\` (RudderStack); \`Content-Encoding: gzip\` is accepted. A \`writeKey\` field authenticates when no header or query parameter does.`,
    content: Object.fromEntries(mediaTypes.map((m) => [m, { schema }])),
  };
}

/**
 * An event schema whose `type` may be left out (the path gives it), for a request
 * body's documentation: a plain JSON schema, not a component.
 */
export function withOptionalType(schema: TSchema): Record<string, unknown> {
  const { $id: _named, ...plain } = JSON.parse(
    JSON.stringify(schema, (k, v) => (k === "errorMessage" ? undefined : v)),
  );
  plain.required = (plain.required as string[] | undefined)?.filter((r) => r !== "type");
  return plain;
}
