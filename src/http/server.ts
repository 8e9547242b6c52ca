import { Elysia } from "elysia";
import { batchRoutes } from "./batch.ts";
import { anySourceAllows, corsHeaders, preflightHeaders } from "./cors.ts";
import type { HttpDeps } from "./deps.ts";
import { errorId, HttpError, ShuttingDownError, StorageError } from "./errors.ts";
import { ingestRoutes } from "./ingest.ts";
import { opsRoutes } from "./ops.ts";
import { loggablePath } from "./redact.ts";
import { sdkSettingsRoutes } from "./sdk-settings.ts";

/**
 * The Elysia app: CORS, the one error mapper, and every route group. Error bodies are
 * built only here; Elysia's own validation error (which echoes the body) never leaves.
 */
export function buildHttpApp(deps: HttpDeps) {
  const { logger } = deps;
  return new Elysia({ precompile: true })
    .onRequest(({ request, set }) => {
      const origin = request.headers.get("origin");
      if (origin && anySourceAllows(deps.config.sources, origin)) {
        Object.assign(set.headers, corsHeaders(origin));
      }
      if (deps.lifecycle.shuttingDown && request.method !== "GET") throw new ShuttingDownError();
    })
    .onError(({ error, code, set, request }) => {
      const path = loggablePath(request.url);
      if (error instanceof HttpError) {
        set.status = error.status;
        if (error.headers) Object.assign(set.headers, error.headers);
        logger.info(
          { method: request.method, path, status: error.status, reason: error.message },
          "request failed",
        );
        return { error: error.message, ...(error.body ?? {}) };
      }
      if (error instanceof ShuttingDownError) {
        set.status = 503;
        return { error: error.message };
      }
      if (code === "NOT_FOUND") {
        set.status = 404;
        return { error: "not found" };
      }
      if (code === "PARSE" || code === "VALIDATION" || code === "INVALID_COOKIE_SIGNATURE") {
        set.status = 400;
        return { error: "invalid request" };
      }
      const id = errorId();
      const status = error instanceof StorageError && deps.lifecycle.shuttingDown ? 503 : 500;
      set.status = status;
      logger.error(
        { errorId: id, method: request.method, path, status, err: error },
        "request failed: internal error",
      );
      return { error: `error# ${id}: internal error` };
    })
    .options("/*", ({ request, set }) => {
      const origin = request.headers.get("origin");
      if (origin && anySourceAllows(deps.config.sources, origin)) {
        Object.assign(set.headers, preflightHeaders(request));
      }
      set.status = 204;
      return "";
    })
    .use(opsRoutes(deps))
    .use(ingestRoutes(deps))
    .use(batchRoutes(deps))
    .use(sdkSettingsRoutes(deps));
}
