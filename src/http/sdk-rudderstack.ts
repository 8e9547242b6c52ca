import { Elysia } from "elysia";
import { acceptBatch } from "./batch.ts";
import type { HttpDeps } from "./deps.ts";
import { deviceDestinations } from "./devices.ts";
import { HttpError } from "./errors.ts";
import { requestIdOf } from "./observe.ts";
import { authenticateKey, chargeRate } from "./request.ts";

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
  return new Elysia({ name: "sdk-rudderstack" })
    .get("/sourceConfig", async ({ request, set }) => {
      const key = authenticateKey(request, deps);
      await chargeRate(deps, key, 0, set.headers);
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
    })
    .post(
      "/beacon/v1/batch",
      async ({ request, server, set }) => {
        try {
          return await acceptBatch(deps, request, server, set.headers);
        } catch (err) {
          if (err instanceof HttpError) {
            deps.logger.warn(
              {
                requestId: requestIdOf(set),
                route: "/beacon/v1/batch",
                status: err.status,
                reason: err.message,
              },
              "beacon refused: the browser does not read this answer, its events are lost",
            );
          }
          throw err;
        }
      },
      { parse: "none" },
    );
}
