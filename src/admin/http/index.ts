import { Elysia } from "elysia";
import type { HttpDeps } from "../../http/deps.ts";
import type { AdminServices } from "../services.ts";
import { eventsRoutes } from "./events-routes.ts";
import { authorizeAdmin } from "./guard.ts";
import { liveRoutes } from "./live-routes.ts";
import { manageRoutes } from "./manage-routes.ts";

const LIVE = "/admin/api/live";

/**
 * The inspector's admin API (SPEC 11), `/admin/api/*`. Every request is authorized in
 * the transform stage, before its query or body is validated: a client without the
 * token gets 401 and learns nothing else, not even that a parameter was wrong.
 */
export function adminApiRoutes(deps: HttpDeps, admin: AdminServices) {
  return new Elysia({ name: "admin-api" })
    .onTransform(({ request, server, set }) => {
      const url = new URL(request.url);
      const ticket = url.pathname === LIVE ? url.searchParams.get("ticket") : null;
      authorizeAdmin(
        request,
        server,
        deps.config,
        set.headers,
        ticket === null ? undefined : { value: ticket, tickets: admin.tickets },
      );
    })
    .use(liveRoutes(admin))
    .use(manageRoutes(deps, admin))
    .use(eventsRoutes(deps, admin));
}
