import type { TSchema } from "@sinclair/typebox";
import { ErrorBody } from "../http/responses.ts";
import { WRITE_KEY_MARK } from "../http/write-key.ts";
import {
  components,
  RATE_LIMIT_HEADERS,
  REQUEST_ID_HEADER,
  RETRY_AFTER_HEADER,
  WRITE_KEY_SECURITY,
} from "./components.ts";
import { ComponentSchemas, isTypeBox } from "./schemas.ts";

type Json = Record<string, unknown>;

/** A route as Elysia lists it (`app.routes`), with what it was declared with. */
export interface RouteRef {
  method: string;
  path: string;
  hooks?: {
    detail?: unknown;
    response?: unknown;
    params?: unknown;
    query?: unknown;
  };
}

/** `/api/s/:type` → `/api/s/{type}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

/** What an answer with this status means, unless the route or its schema says. */
const STATUS_TEXT: Record<string, string> = {
  "200": "OK.",
  "204": "No content.",
  "304": "Not modified.",
  "400":
    "Malformed or invalid input (JSON, content type or encoding, an event, a parameter); `error` names it.",
  "401": "Missing or unknown write key, or a browser key on a server-only route.",
  "403": "A browser key used from an origin its source does not allow.",
  "404": "Not found (an unknown event type or id in the path).",
  "413": "Body (compressed or not) over `maxBodyBytes`, or event over `maxEventBytes`.",
  "415": "A `charset` other than UTF-8.",
  "429": "The write key's bucket has too few tokens; nothing was stored.",
  "500": "Storage or internal failure, masked as `error# <id>: internal error`.",
  "501": "Not implemented yet.",
  "503":
    "Shutting down, a storage backend (NATS, Redis) out of reach, or a messageId another instance is storing right now; nothing was stored: retry after `Retry-After`.",
  "504": "A function or the whole function pipeline ran over its time limit.",
};

/**
 * The OpenAPI 3.1 document of the routes the app serves, generated from what each
 * route declares (see `routeGroup` in src/http/route.ts): `detail` (summary, tags,
 * request body, …), `response` (a TypeBox schema per status), `params`/`query`
 * schemas, and the `writeKey` macro (key schemes, 401, 429, rate-limit headers).
 * A route without a summary or response schemas is still listed, marked
 * `x-undocumented` (a test fails on it), so the document never hides one.
 */
export function openApiDocument(routes: RouteRef[], version: string): Json {
  const schemas = new ComponentSchemas();
  const paths: Record<string, Record<string, Json>> = {};
  const put = (method: string, path: string, op: Json) => {
    paths[openApiPath(path)] ??= {};
    paths[openApiPath(path)]![method.toLowerCase()] = op;
  };
  const shown = routes.filter((r) => !(detailOf(r).hide === true));
  for (const r of shown) {
    if (r.method === "OPTIONS" && r.path === "/*") continue;
    put(r.method, r.path, operation(r, schemas));
  }
  // Elysia serves every CORS preflight with one `OPTIONS /*` route.
  if (shown.some((r) => r.method === "OPTIONS" && r.path === "/*")) {
    for (const r of shown) if (r.method === "POST") put("OPTIONS", r.path, preflight(r.path));
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "sluice",
      version,
      description:
        "Self-hosted analytics event collection. Speaks the Segment, RudderStack and Jitsu wire formats. A write key may also be sent as a `writeKey` field of a JSON body.",
      license: { name: "See the repository" },
    },
    tags: [
      { name: "ingest", description: "Event collection" },
      { name: "sdk", description: "Settings and scripts for browser SDKs" },
      { name: "functions", description: "User functions" },
      { name: "operations", description: "Health, readiness, metrics, this document" },
      { name: "cors", description: "CORS preflights" },
      { name: "inspector", description: "The event inspector's admin API (admin token)" },
    ],
    paths,
    components: components(schemas.all()),
  };
}

function detailOf(route: RouteRef): Json {
  const d = route.hooks?.detail;
  return typeof d === "object" && d !== null ? (d as Json) : {};
}

/** The declared response schemas by status (`response: Schema` alone means 200). */
function declaredResponses(route: RouteRef): Record<string, TSchema> | undefined {
  const r = route.hooks?.response;
  if (isTypeBox(r)) return { "200": r };
  if (typeof r !== "object" || r === null) return undefined;
  const out: Record<string, TSchema> = {};
  for (const [status, schema] of Object.entries(r)) if (isTypeBox(schema)) out[status] = schema;
  return Object.keys(out).length > 0 ? out : undefined;
}

function operation(route: RouteRef, schemas: ComponentSchemas): Json {
  const {
    [WRITE_KEY_MARK]: writeKey,
    responses: given,
    parameters: extraParameters,
    hide: _hide,
    ...rest
  } = detailOf(route) as Json & { responses?: Record<string, Json>; parameters?: Json[] };
  const declared = declaredResponses(route);
  const documented = typeof rest.summary === "string" && declared !== undefined;
  const byStatus: Record<string, TSchema> = { ...declared };
  if (writeKey !== undefined) {
    // The macro's own refusals.
    byStatus["401"] ??= ErrorBody;
    byStatus["429"] ??= ErrorBody;
  }
  const responses: Record<string, Json> = {};
  for (const status of Object.keys(byStatus).sort()) {
    responses[status] = answer(status, byStatus[status]!, writeKey !== undefined, given, schemas);
  }
  if (!documented) responses.default ??= { description: "Not documented yet." };
  return {
    ...(documented ? {} : { summary: `${route.method} ${route.path}`, "x-undocumented": true }),
    ...(convert(rest, schemas) as Json),
    security: rest.security ?? (writeKey === "request" ? WRITE_KEY_SECURITY : []),
    parameters: parameters(route, extraParameters ?? [], schemas),
    responses,
  };
}

/** One answer: its description, headers and body (none for a `t.Void()`). */
function answer(
  status: string,
  schema: TSchema,
  rateLimited: boolean,
  given: Record<string, Json> | undefined,
  schemas: ComponentSchemas,
): Json {
  const own = given?.[status] ?? {};
  const json = schemas.use(schema);
  const ref = typeof json.$ref === "string" ? json.$ref.split("/").pop()! : undefined;
  const plain = ref === undefined ? json : (schemas.get(ref) ?? {});
  const description =
    (own.description as string | undefined) ??
    (plain.description as string | undefined) ??
    STATUS_TEXT[status] ??
    `Status ${status}.`;
  const headers = {
    ...REQUEST_ID_HEADER,
    ...(rateLimited ? RATE_LIMIT_HEADERS : {}),
    // A 503 of the error mapper carries Retry-After; /ready describes (and answers) its own.
    ...(status === "429" || (status === "503" && own.description === undefined)
      ? RETRY_AFTER_HEADER
      : {}),
    ...((own.headers as Json | undefined) ?? {}),
  };
  const out: Json = { description, headers };
  if (own.content !== undefined) return { ...out, content: own.content };
  if (plain.type === "void") return out;
  const mediaType = plain.contentMediaType;
  out.content =
    typeof mediaType === "string"
      ? { [mediaType]: { schema: { type: "string" } } }
      : { "application/json": { schema: json } };
  return out;
}

/** Path parameters from the pattern (and `params`), query ones from `query`, then `detail.parameters`. */
function parameters(route: RouteRef, extra: Json[], schemas: ComponentSchemas): Json[] {
  const out: Json[] = [];
  const fromSchema = (where: "path" | "query", schema: unknown) => {
    if (!isTypeBox(schema)) return;
    const s = schemas.use(schema);
    const required = new Set((s.required as string[] | undefined) ?? []);
    for (const [name, p] of Object.entries((s.properties ?? {}) as Record<string, Json>)) {
      const { description, ...rest } = p;
      out.push({
        name,
        in: where,
        required: where === "path" || required.has(name),
        ...(description ? { description } : {}),
        schema: rest,
      });
    }
  };
  fromSchema("path", route.hooks?.params);
  fromSchema("query", route.hooks?.query);
  for (const m of route.path.matchAll(/:([A-Za-z0-9_]+)/g)) {
    if (!out.some((p) => p.in === "path" && p.name === m[1])) {
      out.push({ name: m[1], in: "path", required: true, schema: { type: "string" } });
    }
  }
  for (const p of extra) {
    const i = out.findIndex((o) => o.name === p.name && o.in === p.in);
    const converted = convert(p, schemas) as Json;
    if (i >= 0) out[i] = { ...out[i], ...converted };
    else out.push(converted);
  }
  return out;
}

/** `detail` as JSON: every TypeBox schema in it replaced by its document form. */
function convert(value: unknown, schemas: ComponentSchemas): unknown {
  if (isTypeBox(value)) return schemas.use(value);
  if (Array.isArray(value)) return value.map((v) => convert(v, schemas));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, convert(v, schemas)]));
  }
  return value;
}

/** The CORS preflight every POST path answers. */
function preflight(path: string): Json {
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
    responses: { "204": { description: "No content.", headers: REQUEST_ID_HEADER } },
  };
}
