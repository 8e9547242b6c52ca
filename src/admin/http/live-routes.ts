import { Elysia } from "elysia";
import { TextBody } from "../../http/responses.ts";
import { VERSION } from "../../version.ts";
import { ATTEMPT_STATUSES } from "../live/attempt.ts";
import type { AdminServices } from "../services.ts";
import { accessOf } from "./guard.ts";
import { badParameter, listParam } from "./params.ts";
import {
  AccessBody,
  ADMIN_ERRORS,
  ADMIN_SECURITY,
  ADMIN_TAG,
  LiveQuery,
  TicketBody,
} from "./schemas.ts";

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-store",
  // nginx would otherwise hold events back in its buffer
  "x-accel-buffering": "no",
};

/** `/admin/api/me`, the live stream and its tickets. */
export function liveRoutes(admin: AdminServices) {
  return new Elysia({ name: "admin-live" })
    .get("/admin/api/me", ({ request }) => ({ ...accessOf(request), version: VERSION }), {
      response: { 200: AccessBody, ...ADMIN_ERRORS },
      detail: {
        tags: [ADMIN_TAG],
        summary: "How this client is let in (token, ticket or loopback)",
        security: ADMIN_SECURITY,
      },
    })
    .post(
      "/admin/api/live/ticket",
      ({ request }) => admin.tickets.issue(accessOf(request).tokenId),
      {
        parse: "none",
        response: { 200: TicketBody, ...ADMIN_ERRORS },
        detail: {
          tags: [ADMIN_TAG],
          summary: "A short-lived one-use ticket for the live stream",
          description:
            "For clients that cannot send an Authorization header (EventSource): the ticket goes in the URL instead of the token. It expires after 30 seconds and works once.",
          security: ADMIN_SECURITY,
        },
      },
    )
    .get(
      "/admin/api/live",
      ({ request, set, query }) => {
        const filter = {
          source: query.source || undefined,
          statuses: listParam("status", query.status, ATTEMPT_STATUSES),
          types: listParam("type", query.type),
          event: query.event || undefined,
        };
        const lastId = request.headers.get("last-event-id");
        if (lastId !== null && !/^\d{1,15}$/.test(lastId)) {
          throw badParameter("Last-Event-ID", "not an event id");
        }
        const subscriber = admin.live.subscribe(
          filter,
          lastId === null ? undefined : Number(lastId),
        );
        return new Response(subscriber.stream, {
          headers: { ...(set.headers as Record<string, string>), ...SSE_HEADERS },
        });
      },
      {
        query: LiveQuery,
        response: { 200: TextBody("text/event-stream", "The stream"), ...ADMIN_ERRORS },
        detail: {
          tags: [ADMIN_TAG],
          summary: "Every ingest attempt as it happens (Server-Sent Events)",
          description:
            "`event: attempt` frames carry one LiveAttempt each (id = its sequence number; a reconnecting client sends Last-Event-ID and gets what it missed from the in-memory ring); `event: rate` frames, once a second, count the last second's attempts per status. A client that stops reading is dropped once it leaves 256 KB unread.",
          security: ADMIN_SECURITY,
          responses: {
            200: {
              description: "The stream",
              content: { "text/event-stream": { schema: { type: "string" } } },
            },
          },
        },
      },
    );
}
