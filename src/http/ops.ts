import { Elysia } from "elysia";
import type { HttpDeps } from "./deps.ts";

/** Liveness and readiness. `/ready` is 503 while shutting down or when the log cannot append. */
export function opsRoutes(deps: HttpDeps) {
  return new Elysia({ name: "ops" })
    .get("/health", () => ({ ok: true }))
    .get("/ready", ({ set }) => {
      const ready = !deps.lifecycle.shuttingDown && deps.log.healthy();
      if (!ready) set.status = 503;
      return { ok: ready, ...(ready ? {} : { error: "not ready" }) };
    });
}
