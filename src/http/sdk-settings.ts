import type { HttpDeps } from "./deps.ts";
import { deviceDestinations } from "./devices.ts";
import { publicBase } from "./public-url.ts";
import { DeviceConfig, SegmentSettings } from "./responses.ts";
import { errors, routeGroup } from "./route.ts";

/**
 * `GET /v1/config?writeKey=…` (the source's device-mode destinations) and
 * `GET /v1/projects/{writeKey}/settings` (the same in Segment's settings shape, with a
 * "Segment.io" entry pointing back here, so analytics.js loads from sluice and sends
 * its events here). The settings carry the key only back to whoever put it in the
 * path: analytics.js takes its write key from `apiKey` and sends nothing without one.
 */
export function sdkSettingsRoutes(deps: HttpDeps) {
  return routeGroup("sdk-settings", deps)
    .get(
      "/v1/config",
      ({ key }) => {
        const destinations = deviceDestinations(deps.config, key.source.id).map((d) => ({
          ...d,
          type: "device" as const,
        }));
        return { sourceId: key.source.id, destinations };
      },
      {
        writeKey: { cost: 0 },
        response: { 200: DeviceConfig, ...errors() },
        detail: {
          tags: ["sdk"],
          operationId: "deviceConfig",
          summary: "The source's device-mode destinations, for browser SDKs",
        },
      },
    )
    .get(
      "/v1/projects/:writeKey/settings",
      ({ key, request, params }) => {
        // The key as given: analytics.js takes it back from `apiKey`.
        const given = decodeURIComponent(params.writeKey);
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
      },
      {
        writeKey: { cost: 0, param: "writeKey" },
        response: { 200: SegmentSettings, ...errors() },
        detail: {
          tags: ["sdk"],
          operationId: "segmentSettings",
          summary: "Segment's CDN settings, so analytics.js can load from sluice",
          description: "The write key is the path parameter.",
        },
      },
    );
}
