import type { TSchema } from "@sinclair/typebox";
import { jsonSchema } from "../../openapi/components.ts";

type Json = Record<string, unknown>;

/** A route as Elysia lists it, with the schemas and `detail` it was declared with. */
export interface DeclaredRoute {
  method: string;
  path: string;
  hooks?: {
    detail?: Json;
    params?: TSchema;
    query?: TSchema;
    response?: Record<string | number, TSchema> | TSchema;
  };
}

const STATUS_TEXT: Record<string, string> = {
  "200": "OK",
  "400": "A parameter is wrong; `parameter` names it.",
  "401": "Missing or wrong admin token.",
  "403": "Cross-origin request, or (with no admin token configured) not from loopback.",
  "404": "Unknown connection or event.",
  "501": "This server cannot do it yet.",
};

/** The admin token, sent as `Authorization: Bearer <token>`. */
export const ADMIN_SECURITY_SCHEME = {
  adminToken: {
    type: "http",
    scheme: "bearer",
    description:
      "An admin token from `sluice admin token create`. With none configured, the admin API answers loopback requests only.",
  },
};

/**
 * The OpenAPI operation of a route declared with TypeBox schemas and a `detail`
 * (the admin routes): its parameters from the params and query schemas, its answers
 * from the response schemas, and whatever `detail` adds.
 */
export function declaredOperation(route: DeclaredRoute): Json | undefined {
  const hooks = route.hooks;
  if (hooks?.detail === undefined) return undefined;
  const parameters: Json[] = [];
  const add = (where: "path" | "query", schema: TSchema | undefined) => {
    const s = schema && jsonSchema(schema);
    const props = (s?.properties ?? {}) as Record<string, Json>;
    const required = new Set((s?.required as string[] | undefined) ?? []);
    for (const [name, p] of Object.entries(props)) {
      const { description, ...rest } = p;
      parameters.push({
        name,
        in: where,
        required: where === "path" || required.has(name),
        ...(description ? { description } : {}),
        schema: rest,
      });
    }
  };
  add("path", hooks.params);
  add("query", hooks.query);
  const responses: Record<string, Json> = {};
  const declared = hooks.response;
  if (declared && !("type" in declared || "anyOf" in declared)) {
    for (const [status, schema] of Object.entries(declared as Record<string, TSchema>)) {
      responses[status] = {
        description: STATUS_TEXT[status] ?? `Status ${status}`,
        content: { "application/json": { schema: jsonSchema(schema) } },
      };
    }
  }
  const { responses: extra, ...detail } = hooks.detail as Json & { responses?: Json };
  return { ...detail, parameters, responses: { ...responses, ...(extra ?? {}) } };
}
