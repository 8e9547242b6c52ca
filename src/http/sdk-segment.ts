import { Elysia } from "elysia";
import { EVENT_TYPES } from "../events/schema.ts";
import { acceptBatch } from "./batch.ts";
import type { HttpDeps } from "./deps.ts";
import { acceptOne, SINGLE_OK } from "./ingest.ts";

/**
 * Segment analytics.js 2.0 (`@segment/analytics-next`) posts to one-letter paths under
 * its `apiHost`: `/v1/t` track, `/v1/p` page, `/v1/i` identify, `/v1/g` group,
 * `/v1/a` alias, `/v1/s` screen, `/v1/b` a batch (its batching strategy), and `/v1/m`
 * its own metrics. They are the `/v1/{type}` and `/v1/batch` routes under other
 * names; `/v1/m` is answered and ignored (those are the SDK's counters, not events).
 */
export function segmentShortRoutes(deps: HttpDeps) {
  const app = new Elysia({ name: "sdk-segment" });
  for (const type of EVENT_TYPES) {
    app.post(
      `/v1/${type[0]}`,
      ({ request, server, set }) => acceptOne(deps, request, server, set.headers, type),
      { parse: "none" },
    );
  }
  return app
    .post("/v1/b", ({ request, server, set }) => acceptBatch(deps, request, server, set.headers), {
      parse: "none",
    })
    .post("/v1/m", () => SINGLE_OK, { parse: "none" });
}
