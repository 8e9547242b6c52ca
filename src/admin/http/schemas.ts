import { type Static, Type as t } from "@sinclair/typebox";
import { ErrorBody } from "../../http/responses.ts";
import { ConnectionPathView, ConnectionView } from "../delivery/control.ts";

/** Route documentation shared by every admin route (OpenAPI `detail`). */
export const ADMIN_TAG = "inspector";
export const ADMIN_SECURITY = [{ adminToken: [] }];

/** Error answers every admin route may give. */
export const ADMIN_ERRORS = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
};

/** `GET /admin/api/me`: how this client is let in. */
export const AccessBody = t.Object({
  via: t.Union([t.Literal("token"), t.Literal("ticket"), t.Literal("loopback")]),
  tokenId: t.Union([t.String(), t.Null()]),
  version: t.String(),
});

/** `POST /admin/api/live/ticket`. */
export const TicketBody = t.Object({
  ticket: t.String({ description: "Use once, as ?ticket= on GET /admin/api/live." }),
  expiresAt: t.String(),
});

const optionalText = (description: string) => t.Optional(t.String({ description }));

/** Query of `GET /admin/api/live` (checked by the route, which names a bad parameter). */
export const LiveQuery = t.Object({
  source: optionalText("Only this source's attempts."),
  status: optionalText(
    "Comma-separated: accepted, duplicate, rejected, rate_limited, unauthorized, failed.",
  ),
  type: optionalText("Comma-separated event types."),
  event: optionalText("Only track events of this name."),
  ticket: optionalText("A one-use ticket from POST /admin/api/live/ticket, instead of the token."),
});

/** `GET /admin/api/sources`: sources, their key ids and their last hour per minute. */
export const SourcesBody = t.Object({
  sources: t.Array(
    t.Object({
      id: t.String(),
      name: t.String(),
      keys: t.Array(
        t.Object({ id: t.String(), type: t.Union([t.Literal("browser"), t.Literal("server")]) }),
      ),
      connections: t.Array(t.String()),
      minutes: t.Array(
        t.Object({
          minute: t.String(),
          accepted: t.Integer({ minimum: 0 }),
          rejected: t.Integer({ minimum: 0 }),
          duplicate: t.Integer({ minimum: 0 }),
          rateLimited: t.Integer({ minimum: 0 }),
        }),
        { description: "The last 60 minutes, oldest first." },
      ),
    }),
  ),
});
export type SourcesBody = Static<typeof SourcesBody>;

export const ConnectionsBody = t.Object({ connections: t.Array(ConnectionView) });

export const ReplayRequest = t.Object({
  from: t.String({ description: "ISO-8601 time: events received at or after it." }),
  to: t.Optional(t.String({ description: "ISO-8601 time: events received before it." })),
});

export const ActionBody = t.Object({ ok: t.Literal(true) }, { additionalProperties: true });

/** Query of `GET /admin/api/events` (checked by the route, which names a bad parameter). */
export const EventsQuery = t.Object({
  source: optionalText("Only this source (default: every source)."),
  messageId: optionalText("Exact messageId."),
  userId: optionalText("Exact userId."),
  anonymousId: optionalText("Exact anonymousId."),
  event: optionalText("Exact track event name."),
  type: optionalText("track, page, identify, group, alias or screen."),
  from: optionalText("Received at or after (ISO-8601 or ms since the epoch)."),
  to: optionalText("Received before (ISO-8601 or ms since the epoch)."),
  limit: optionalText("Events per page, 1 to 200 (default 50)."),
  cursor: optionalText("The `next` of the previous page."),
});

export const EventsBody = t.Object({
  events: t.Array(t.Record(t.String(), t.Unknown()), {
    description: "Stored events, newest first.",
  }),
  next: t.Union([t.String(), t.Null()], { description: "Cursor of the next (older) page." }),
});

/** A stored event with its path (SPEC 11). */
export const EventDetailBody = t.Object({
  event: t.Record(t.String(), t.Unknown()),
  path: t.Object({
    receivedAt: t.String(),
    storedAt: t.Union([t.String(), t.Null()], {
      description:
        "When the event's log record became durable (before it was acknowledged); null when not known: events stored by a version without it, or by an earlier run and not yet indexed when it stopped.",
    }),
    position: t.String({ description: "Where the event sits in the log (opaque)." }),
    connections: t.Array(ConnectionPathView),
  }),
});
