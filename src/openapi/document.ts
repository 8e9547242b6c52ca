import { ADMIN_SECURITY_SCHEME, declaredOperation } from "../admin/http/openapi.ts";
import { components } from "./components.ts";
import { OPERATIONS, preflight } from "./operations.ts";
import { SDK_OPERATIONS } from "./sdk-operations.ts";

type Json = Record<string, unknown>;

/** A route the HTTP app serves, as Elysia lists it (`app.routes`). */
export interface RouteRef {
  method: string;
  path: string;
  /** The schemas and `detail` a route was declared with (documents routes not in OPERATIONS). */
  hooks?: Parameters<typeof declaredOperation>[0]["hooks"];
}

/** `/api/s/:type` → `/api/s/{type}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

/**
 * The OpenAPI 3.1 document of the routes the app actually serves: each documented in
 * `OPERATIONS` from the TypeBox schemas. A route missing from that table is still
 * listed, marked `x-undocumented` (a test fails on it), so the document never hides one.
 */
export function openApiDocument(routes: RouteRef[], version: string): Json {
  const served = new Set(routes.map(routeKey));
  const paths: Record<string, Record<string, Json>> = {};
  const add = (method: string, path: string, doc: Json) => {
    paths[openApiPath(path)] ??= {};
    paths[openApiPath(path)]![method.toLowerCase()] = doc;
  };
  const done = new Set<string>();
  for (const op of [...OPERATIONS, ...SDK_OPERATIONS]) {
    if (!served.has(routeKey(op))) continue;
    add(op.method, op.path, op.doc);
    done.add(routeKey(op));
  }
  if (served.has("OPTIONS /*")) {
    done.add("OPTIONS /*");
    for (const r of routes) if (r.method === "POST") add("OPTIONS", r.path, preflight(r.path));
  }
  for (const r of routes) {
    if (done.has(routeKey(r))) continue;
    const declared = declaredOperation(r);
    if (declared) {
      add(r.method, r.path, declared);
      continue;
    }
    add(r.method, r.path, {
      summary: `${r.method} ${r.path}`,
      "x-undocumented": true,
      parameters: [...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({
        name: m[1],
        in: "path",
        required: true,
        schema: { type: "string" },
      })),
      responses: { default: { description: "Not documented yet." } },
    });
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
      { name: "sdk", description: "Settings for browser SDKs" },
      { name: "functions", description: "User functions" },
      { name: "operations", description: "Health, readiness, metrics, this document" },
      { name: "cors", description: "CORS preflights" },
      { name: "inspector", description: "The event inspector's admin API (admin token)" },
    ],
    paths,
    components: withAdminScheme(components()),
  };
}

function routeKey(r: RouteRef): string {
  return `${r.method} ${r.path}`;
}

function withAdminScheme(c: Json): Json {
  return { ...c, securitySchemes: { ...(c.securitySchemes as Json), ...ADMIN_SECURITY_SCHEME } };
}
