import { type AnyElysia, t } from "elysia";
import { openApiDocument } from "../openapi/document.ts";
import { VERSION } from "../version.ts";

/**
 * `GET /openapi.json`. A functional plugin: it gets the whole app, so the document
 * covers every route registered on it, including those added after this plugin.
 * Built on the first request (when every route is in) and kept.
 */
export function openapiRoutes() {
  return <App extends AnyElysia>(app: App) => {
    let body: string | undefined;
    return app.get(
      "/openapi.json",
      () => {
        body ??= JSON.stringify(openApiDocument(app.routes, VERSION));
        return new Response(body, {
          headers: { "content-type": "application/json; charset=utf-8" },
        });
      },
      {
        response: {
          200: t.Object({}, { additionalProperties: true, description: "OpenAPI 3.1 document." }),
        },
        detail: { tags: ["operations"], operationId: "openapi", summary: "This document" },
      },
    );
  };
}
