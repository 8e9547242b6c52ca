import type { DeliveryControl } from "./delivery/control.ts";
import type { LiveHub } from "./live/hub.ts";
import type { LiveTickets } from "./live/tickets.ts";
import type { SourceRates } from "./rates.ts";

/** What the inspector's routes need; built by the composition root (app.ts). */
export interface AdminServices {
  live: LiveHub;
  tickets: LiveTickets;
  rates: SourceRates;
  delivery: DeliveryControl;
}
