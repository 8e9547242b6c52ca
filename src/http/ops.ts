import { Elysia } from "elysia";
import type { HttpDeps } from "./deps.ts";
import { HealthBody } from "./responses.ts";

/**
 * Liveness and readiness. `/ready` is 503 while shutting down, when the log cannot
 * append, or when dedup keys cannot be written.
 */
export function opsRoutes(deps: HttpDeps) {
  return new Elysia({ name: "ops" })
    .get("/health", () => ({ ok: true }), {
      response: { 200: HealthBody },
      detail: {
        tags: ["operations"],
        operationId: "health",
        summary: "Liveness",
        responses: { 200: { description: "The process serves requests." } },
      },
    })
    .get(
      "/ready",
      ({ set }) => {
        const ready =
          !deps.lifecycle.shuttingDown && deps.log.healthy() && (deps.dedup?.healthy() ?? true);
        if (!ready) set.status = 503;
        return { ok: ready, ...(ready ? {} : { error: "not ready" }) };
      },
      {
        response: { 200: HealthBody, 503: HealthBody },
        detail: {
          tags: ["operations"],
          operationId: "ready",
          summary:
            "Readiness: not shutting down, the event log accepts appends, dedup keys are written",
          responses: { 200: { description: "Ready." }, 503: { description: "Not ready." } },
        },
      },
    );
}
