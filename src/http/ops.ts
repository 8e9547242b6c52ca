import { Elysia } from "elysia";
import type { HttpDeps } from "./deps.ts";
import { HealthBody } from "./responses.ts";

/** Liveness and readiness. `/ready` is 503 while shutting down or when the log cannot append. */
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
        const ready = !deps.lifecycle.shuttingDown && deps.log.healthy();
        if (!ready) set.status = 503;
        return { ok: ready, ...(ready ? {} : { error: "not ready" }) };
      },
      {
        response: { 200: HealthBody, 503: HealthBody },
        detail: {
          tags: ["operations"],
          operationId: "ready",
          summary: "Readiness: not shutting down and the event log accepts appends",
          responses: { 200: { description: "Ready." }, 503: { description: "Not ready." } },
        },
      },
    );
}
