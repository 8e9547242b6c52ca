import { BATCH, BATCH_RESPONSES, batchDetail, batchHandler } from "./batch.ts";
import type { HttpDeps } from "./deps.ts";
import { deviceDestinations } from "./devices.ts";
import { answerError, requestIdOf } from "./observe.ts";
import { RudderSourceConfig } from "./responses.ts";
import { errors, routeGroup } from "./route.ts";

/** sluice has no workspaces; RudderStack's SDK only wants the field present. */
const WORKSPACE_ID = "sluice";

/**
 * RudderStack's JS SDK v3 (`@rudderstack/analytics-js`):
 * - `GET /sourceConfig` (the SDK asks for `/sourceConfig/?p=…&v=…&writeKey=…` with
 *   Basic auth under its `configUrl`): the start-up config it will not run without,
 *   with the source's device-mode destinations in RudderStack's shape.
 * - `POST /beacon/v1/batch?writeKey=…`: its `sendBeacon` transport, a `text/plain`
 *   batch. The browser never reads the answer, so a refused beacon is logged as a
 *   warning here (and counted by route and status in `sluice_http_requests_total`).
 * Its XHR transport posts to `/v1/{type}` and `/v1/batch`, served elsewhere.
 */
export function rudderstackRoutes(deps: HttpDeps) {
  return routeGroup("sdk-rudderstack", deps)
    .get(
      "/sourceConfig",
      ({ key }) => {
        const source = key.source;
        return {
          source: {
            id: source.id,
            name: source.name ?? source.id,
            enabled: true,
            workspaceId: WORKSPACE_ID,
            config: {},
            destinations: deviceDestinations(deps.config, source.id).map((d) => ({
              id: d.id,
              name: d.name,
              enabled: true,
              config: d.options,
              destinationDefinitionId: d.name,
              // The SDK picks the integration to load by this display name.
              destinationDefinition: { name: d.name, displayName: d.name },
              shouldApplyDeviceModeTransformation: false,
              propagateEventsUntransformedOnError: false,
            })),
          },
        };
      },
      {
        writeKey: { cost: 0 },
        response: { 200: RudderSourceConfig, ...errors() },
        detail: {
          tags: ["sdk"],
          operationId: "rudderstackSourceConfig",
          summary: "RudderStack JS SDK v3 start-up config",
          description:
            "The SDK asks for `/sourceConfig/?p=…&v=…&writeKey=…` (trailing slash accepted) with Basic auth; its `configUrl` load option points here. Device-mode destinations are listed in RudderStack's shape.",
        },
      },
    )
    .post("/beacon/v1/batch", batchHandler(deps), {
      // Sees every answer of the route, refusals by the write-key macro included.
      mapResponse: ({ set, responseValue }) => {
        const status = typeof set.status === "number" ? set.status : 200;
        if (status >= 400) {
          const error = answerError(responseValue);
          deps.logger.warn(
            {
              requestId: requestIdOf(set),
              route: "/beacon/v1/batch",
              status,
              reason: error ?? `status ${status}`,
            },
            "beacon refused: the browser does not read this answer, its events are lost",
          );
        }
        // Returns nothing: the answer stays as the app's own mapResponse hook made it.
      },
      writeKey: BATCH,
      parse: "none",
      response: BATCH_RESPONSES,
      detail: {
        ...batchDetail("rudderstackBeacon", "Many events, RudderStack's sendBeacon transport"),
        description:
          'The key in the `writeKey` query parameter, a `text/plain` body, as `/v1/batch`. The browser never reads the answer: a refused beacon is logged as a warning and counted in `sluice_http_requests_total{route="/beacon/v1/batch"}` by status.',
      },
    });
}
