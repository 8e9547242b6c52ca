import { Elysia } from "elysia";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/registry.ts";
import type { HttpDeps } from "./deps.ts";
import { TextBody } from "./responses.ts";

/** `GET /metrics`: Prometheus text format. No auth, like /health: it holds no secret. */
export function metricsRoutes(deps: HttpDeps) {
  return new Elysia({ name: "metrics" }).get(
    "/metrics",
    async ({ set }) => {
      set.headers["content-type"] = PROMETHEUS_CONTENT_TYPE;
      return (await deps.metrics?.scrape()) ?? "";
    },
    {
      response: { 200: TextBody("text/plain", "Metrics.") },
      detail: {
        tags: ["operations"],
        operationId: "metrics",
        summary: "Prometheus metrics (text exposition format 0.0.4)",
      },
    },
  );
}
