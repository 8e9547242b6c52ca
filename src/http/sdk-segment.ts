import { EVENT_TYPES } from "../events/schema.ts";
import { BATCH, BATCH_RESPONSES, batchDetail, batchHandler } from "./batch.ts";
import type { HttpDeps } from "./deps.ts";
import {
  SINGLE_EVENT,
  SINGLE_OK,
  SINGLE_RESPONSES,
  segmentDetail,
  singleEventHandler,
} from "./ingest.ts";
import { OkResponse } from "./responses.ts";
import { routeGroup } from "./route.ts";

/**
 * Segment analytics.js 2.0 (`@segment/analytics-next`) posts to one-letter paths under
 * its `apiHost`: `/v1/t` track, `/v1/p` page, `/v1/i` identify, `/v1/g` group,
 * `/v1/a` alias, `/v1/s` screen, `/v1/b` a batch (its batching strategy), and `/v1/m`
 * its own metrics. They are the `/v1/{type}` and `/v1/batch` routes under other
 * names; `/v1/m` is answered and ignored (those are the SDK's counters, not events).
 */
export function segmentShortRoutes(deps: HttpDeps) {
  const app = routeGroup("sdk-segment", deps);
  for (const type of EVENT_TYPES) {
    const long = segmentDetail(type);
    app.post(
      `/v1/${type[0]}`,
      singleEventHandler(deps, () => type),
      {
        writeKey: SINGLE_EVENT,
        parse: "none",
        response: SINGLE_RESPONSES,
        detail: {
          ...long,
          operationId: `${long.operationId}Short`,
          summary: `One ${type} event, Segment analytics.js 2.0 short path`,
          description: `Same as \`/v1/${type}\`; analytics.js 2.0 posts here (\`text/plain\`, Basic auth, and a \`writeKey\` body field that is never stored).`,
        },
      },
    );
  }
  return app
    .post("/v1/b", batchHandler(deps), {
      writeKey: BATCH,
      parse: "none",
      response: BATCH_RESPONSES,
      detail: batchDetail(
        "segmentBatchShort",
        "Many events, Segment analytics.js 2.0 batching strategy",
      ),
    })
    .post("/v1/m", () => SINGLE_OK, {
      parse: "none",
      response: { 200: OkResponse },
      detail: {
        tags: ["sdk"],
        operationId: "segmentMetrics",
        summary: "analytics.js 2.0's own metrics: answered and ignored",
        description: "Nothing is read or stored; no write key is needed.",
        responses: { 200: { description: "Ignored." } },
      },
    });
}
