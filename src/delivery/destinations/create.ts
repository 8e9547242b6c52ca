import type { DestinationConfig } from "../../config/schema.ts";
import type { Destination } from "../interface.ts";
import { FileDestination } from "./file.ts";
import { PostgresDestination } from "./postgres.ts";
import { WebhookDestination } from "./webhook.ts";

/** A destination the server delivers to (`device` ones are the browser's). */
export type ServerSideDestination = Exclude<DestinationConfig, { type: "device" }>;

export function createDestination(d: ServerSideDestination): Destination {
  switch (d.type) {
    case "webhook":
      return new WebhookDestination({
        url: d.url,
        headers: d.headers,
        secret: d.secret,
        timeoutMs: d.timeoutMs,
      });
    case "postgres":
      return new PostgresDestination({ url: d.url, table: d.table });
    case "file":
      return new FileDestination({ path: d.path, maxBytes: d.maxBytes });
  }
}
