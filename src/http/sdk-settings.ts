import { Elysia } from "elysia";
import type { ConnectionConfig } from "../config/schema.ts";
import type { HttpDeps } from "./deps.ts";
import { authenticateKey, chargeRate } from "./request.ts";

/** A device-mode destination as browser SDKs are told about it. */
function deviceDestination(c: ConnectionConfig) {
  const d = c.destination.type === "device" ? c.destination : undefined;
  return { id: c.id, type: "device", name: d?.name ?? c.id, options: d?.options ?? {} };
}

/**
 * `GET /v1/config?writeKey=…` (the source's device-mode destinations) and
 * `GET /v1/projects/{writeKey}/settings` (the same in Segment's settings shape, with a
 * "Segment.io" entry pointing back here, so analytics.js can load from sluice).
 * Neither echoes the write key.
 */
export function sdkSettingsRoutes(deps: HttpDeps) {
  const devices = (sourceId: string) =>
    deps.config.connections
      .filter((c) => c.source === sourceId && c.destination.type === "device")
      .map(deviceDestination);

  return new Elysia({ name: "sdk-settings" })
    .get("/v1/config", async ({ request, set }) => {
      const key = authenticateKey(request, deps);
      await chargeRate(deps, key, 0, set.headers);
      return { sourceId: key.source.id, destinations: devices(key.source.id) };
    })
    .get("/v1/projects/:writeKey/settings", async ({ request, set, params }) => {
      const key = authenticateKey(request, deps, decodeURIComponent(params.writeKey));
      await chargeRate(deps, key, 0, set.headers);
      const url = new URL(request.url);
      const forwardedProto = deps.config.server.trustProxy
        ? request.headers.get("x-forwarded-proto")
        : null;
      const protocol = (forwardedProto ?? url.protocol).replace(":", "");
      const host =
        (deps.config.server.trustProxy && request.headers.get("x-forwarded-host")) || url.host;
      const integrations: Record<string, unknown> = {
        "Segment.io": {
          apiHost: `${host}/v1`,
          protocol,
          addBundledMetadata: false,
          unbundledIntegrations: [],
        },
      };
      for (const d of devices(key.source.id)) integrations[d.name] = d.options;
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
        metrics: { sampleRate: 0 },
        legacyVideoPluginsEnabled: false,
        remotePlugins: [],
      };
    });
}
