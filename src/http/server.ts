import { Elysia } from "elysia";
import { adminApiRoutes } from "../admin/http/index.ts";
import { pageRoutes } from "../admin/http/page-routes.ts";
import { batchRoutes } from "./batch.ts";
import { anySourceAllows, corsHeaders, preflightHeaders } from "./cors.ts";
import type { HttpDeps } from "./deps.ts";
import { errorId, HttpError, ShuttingDownError, StorageError } from "./errors.ts";
import { funcsRoutes } from "./funcs.ts";
import { ingestRoutes } from "./ingest.ts";
import { metricsRoutes } from "./metrics.ts";
import { requestIdOf, requestObserver, routeOf } from "./observe.ts";
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
  const { logger } = deps;
  const observe = requestObserver(deps);
  return new Elysia({ precompile: true })
    .onRequest(observe.begin)
    .onRequest(({ request, set }) => {
      const origin = request.headers.get("origin");
      if (origin && anySourceAllows(deps.config.sources, origin)) {
        Object.assign(set.headers, corsHeaders(origin));
      }
      if (deps.lifecycle.shuttingDown && request.method !== "GET") throw new ShuttingDownError();
    })
    .onError((ctx) => {
      const { error, code, set, request } = ctx;
      // The route pattern, never the path: a path may hold a write key (`/v1/KEY`,
      // `/api/s/KEY`, `//v1/projects/KEY/settings`), matched or not.
      const route = routeOf(ctx);
      const requestId = requestIdOf(set);
      if (error instanceof HttpError) {
        set.status = error.status;
        if (error.headers) Object.assign(set.headers, error.headers);
        logger.info(
          { requestId, method: request.method, route, status: error.status, reason: error.message },
          "request failed",
        );
        return { error: error.message, ...(error.body ?? {}) };
      }
      const fail = (status: number, message: string) => {
        set.status = status;
        logger.info(
          { requestId, method: request.method, route, status, reason: message },
          "request failed",
        );
        return { error: message };
      };
      if (error instanceof ShuttingDownError) return fail(503, error.message);
      if (code === "NOT_FOUND") return fail(404, "not found");
      if (code === "PARSE" || code === "VALIDATION" || code === "INVALID_COOKIE_SIGNATURE") {
        return fail(400, "invalid request");
      }
      const id = errorId();
      const status = error instanceof StorageError && deps.lifecycle.shuttingDown ? 503 : 500;
      set.status = status;
      logger.error(
        { requestId, errorId: id, method: request.method, route, status, err: error },
        "request failed: internal error",
      );
      return { error: `error# ${id}: internal error` };
    })
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
