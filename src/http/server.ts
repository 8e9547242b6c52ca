import { Elysia } from "elysia";
import { adminApiRoutes } from "../admin/http/index.ts";
import { pageRoutes } from "../admin/http/page-routes.ts";
import { ShuttingDownError } from "../errors.ts";
import { batchRoutes } from "./batch.ts";
import { anySourceAllows, corsHeaders, preflightHeaders } from "./cors.ts";
import type { HttpDeps } from "./deps.ts";
import { errorHandler } from "./errors.ts";
import { funcsRoutes } from "./funcs.ts";
import { ingestRoutes } from "./ingest.ts";
import { metricsRoutes } from "./metrics.ts";
import { requestObserver } from "./observe.ts";
import { openapiRoutes } from "./openapi.ts";
import { opsRoutes } from "./ops.ts";
import { jitsuScriptRoutes } from "./sdk-jitsu.ts";
import { rudderstackRoutes } from "./sdk-rudderstack.ts";
import { segmentShortRoutes } from "./sdk-segment.ts";
import { sdkSettingsRoutes } from "./sdk-settings.ts";

/**
 * The Elysia app: CORS, the one error mapper, and every route group. Error bodies are
 * built only here; Elysia's own validation error (which echoes the body) never leaves.
 */
export function buildHttpApp(deps: HttpDeps) {
  const observe = requestObserver(deps);
  // Each route's handler and validators are compiled on its first request, not all at
  // boot: the inspector's and admin API's dozens of routes, most never called on a
  // given day, held ~12 MB of an idle server (bench/RESULTS.md, "Fourth session: idle
  // RSS"); a compiled route is the same either way.
  return new Elysia({ precompile: false })
    .onRequest(observe.begin)
    .onRequest(({ request, set }) => {
      const origin = request.headers.get("origin");
      if (origin && anySourceAllows(deps.config.sources, origin)) {
        Object.assign(set.headers, corsHeaders(origin));
      }
      if (deps.lifecycle.shuttingDown && request.method !== "GET") throw new ShuttingDownError();
    })
    .onError(errorHandler(deps))
    .mapResponse(observe.end)
    .options("/*", ({ request, set }) => {
      const origin = request.headers.get("origin");
      if (origin && anySourceAllows(deps.config.sources, origin)) {
        Object.assign(set.headers, preflightHeaders(request));
      }
      set.status = 204;
      return "";
    })
    .use(opsRoutes(deps))
    .use(metricsRoutes(deps))
    .use(ingestRoutes(deps))
    .use(batchRoutes(deps))
    .use(funcsRoutes(deps))
    .use(sdkSettingsRoutes(deps))
    .use(segmentShortRoutes(deps))
    .use(rudderstackRoutes(deps))
    .use(jitsuScriptRoutes())
    .use(deps.admin ? adminApiRoutes(deps, deps.admin) : new Elysia({ name: "no-admin" }))
    .use(deps.admin ? pageRoutes(deps) : new Elysia({ name: "no-inspector" }))
    .use(openapiRoutes());
}
