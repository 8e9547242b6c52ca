import type { SluiceConfig } from "../config/schema.ts";

/** A device-mode destination of a source: the browser SDK runs it, sluice only announces it. */
export interface DeviceDestination {
  /** The connection's id. */
  id: string;
  /** The SDK's name for the integration (e.g. `Google Analytics 4`); the id when unset. */
  name: string;
  options: Record<string, unknown>;
}

/** The source's `device` connections, as `/v1/config`, the Segment settings and `/sourceConfig` announce them. */
export function deviceDestinations(config: SluiceConfig, sourceId: string): DeviceDestination[] {
  const out: DeviceDestination[] = [];
  for (const c of config.connections) {
    const d = c.destination;
    if (c.source !== sourceId || d.type !== "device") continue;
    out.push({ id: c.id, name: d.name ?? c.id, options: d.options ?? {} });
  }
  return out;
}
