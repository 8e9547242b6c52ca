import type { DeliveryControl } from "./delivery/control.ts";
import type { LiveHub } from "./live/hub.ts";
import type { LiveTickets } from "./live/tickets.ts";
import type { SourceRates } from "./rates.ts";
import type { EventSearch } from "./search/search.ts";

/** What the inspector's routes need; built by the composition root (app.ts). */
export interface AdminServices {
  live: LiveHub;
  tickets: LiveTickets;
  rates: SourceRates;
  delivery: DeliveryControl;
  /** Search of the stored log; absent when the search index is off (admin.searchIndex). */
  search?: EventSearch;
}
