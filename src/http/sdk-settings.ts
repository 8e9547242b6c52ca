import { Elysia } from "elysia";
import type { HttpDeps } from "./deps.ts";
import { deviceDestinations } from "./devices.ts";
import { publicBase } from "./public-url.ts";
import { authenticateKey, chargeRate } from "./request.ts";

/**
 * `GET /v1/config?writeKey=…` (the source's device-mode destinations) and
 * `GET /v1/projects/{writeKey}/settings` (the same in Segment's settings shape, with a
 * "Segment.io" entry pointing back here, so analytics.js loads from sluice and sends
 * its events here). The settings carry the key only back to whoever put it in the
 * path: analytics.js takes its write key from `apiKey` and sends nothing without one.
 */
export function sdkSettingsRoutes(deps: HttpDeps) {
  return new Elysia({ name: "sdk-settings" })
    .get("/v1/config", async ({ request, set }) => {
      const key = authenticateKey(request, deps);
      await chargeRate(deps, key, 0, set.headers);
      const destinations = deviceDestinations(deps.config, key.source.id).map((d) => ({
        ...d,
        type: "device" as const,
      }));
      return { sourceId: key.source.id, destinations };
    })
    .get("/v1/projects/:writeKey/settings", async ({ request, set, params }) => {
      const given = decodeURIComponent(params.writeKey);
      const key = authenticateKey(request, deps, given);
      await chargeRate(deps, key, 0, set.headers);
      const { protocol, host } = publicBase(request, deps.config.server);
      const apiHost = `${host}/v1`;
      const integrations: Record<string, unknown> = {
        "Segment.io": {
          apiKey: given,
          apiHost,
          protocol,
          addBundledMetadata: false,
          unbundledIntegrations: [],
        },
      };
      for (const d of deviceDestinations(deps.config, key.source.id)) {
        integrations[d.name] = d.options;
      }
      return {
        integrations,
        plan: {
          track: { __default: { enabled: true, integrations: {} } },
          identify: { __default: { enabled: true } },
          group: { __default: { enabled: true } },
        },
        edgeFunction: {},
        analyticsNextEnabled: true,
        middlewareSettings: {},
        enabledMiddleware: {},
        // Sampling 0 keeps analytics.js from posting its own metrics; were it on, they
        // would go to /v1/m here (answered, ignored), never to Segment.
        metrics: { sampleRate: 0, host: apiHost },
        legacyVideoPluginsEnabled: false,
        remotePlugins: [],
      };
    });
}
