import { Elysia, t } from "elysia";
import { SluiceError } from "../../errors.ts";
import { EVENT_TYPES } from "../../events/schema.ts";
import type { HttpDeps } from "../../http/deps.ts";
import { ErrorBody } from "../../http/responses.ts";
import type { EventQuery } from "../search/search.ts";
import type { AdminServices } from "../services.ts";
import { badParameter, intParam, timeParam } from "./params.ts";
import {
  ADMIN_ERRORS,
  ADMIN_SECURITY,
  ADMIN_TAG,
  EventDetailBody,
  EventsBody,
  EventsQuery,
} from "./schemas.ts";

const CURSOR = /^c1\.(\d{1,15})$/;

/** The opaque `next` of a page: where the following (older) page starts. */
export function encodeCursor(before: number): string {
  return Buffer.from(`c1.${before}`).toString("base64url");
}

function decodeCursor(value: string): number {
  const m = /^[A-Za-z0-9_-]{1,64}$/.test(value)
    ? CURSOR.exec(Buffer.from(value, "base64url").toString("latin1"))
    : null;
  if (!m) throw badParameter("cursor", "malformed (pass back the `next` of a previous page)");
  return Number(m[1]);
}

/** The search query from the URL's parameters; a bad one is a 400 that names it. */
function readQuery(q: Record<string, string | undefined>, deps: HttpDeps): EventQuery {
  const text = (name: string, max = 256) => {
    const v = q[name];
    if (v === undefined || v === "") return undefined;
    if (v.length > max) throw badParameter(name, `longer than ${max} characters`);
    return v;
  };
  const source = text("source", 128);
  if (source !== undefined && !deps.config.sources.some((s) => s.id === source)) {
    throw badParameter("source", `unknown source ${JSON.stringify(source)}`);
  }
  const type = text("type", 16);
  if (type !== undefined && !(EVENT_TYPES as readonly string[]).includes(type)) {
    throw badParameter("type", `one of ${EVENT_TYPES.join(", ")}`);
  }
  const from = timeParam("from", q.from)?.getTime();
  const to = timeParam("to", q.to)?.getTime();
  if (from !== undefined && to !== undefined && to <= from) {
    throw badParameter("to", "must be after from");
  }
  return {
    source,
    type,
    messageId: text("messageId", 100),
    userId: text("userId"),
    anonymousId: text("anonymousId"),
    event: text("event"),
    from,
    to,
    limit: intParam("limit", q.limit, { min: 1, max: 200, default: 50 }),
    before: q.cursor === undefined || q.cursor === "" ? undefined : decodeCursor(q.cursor),
  };
}

/** Search of the stored log, and one event with its path. */
export function eventsRoutes(deps: HttpDeps, admin: AdminServices) {
  const search = () => {
    if (!admin.search) {
      throw new SluiceError(
        "not_implemented",
        "the search index is off (admin.searchIndex: false)",
      );
    }
    return admin.search;
  };
  return new Elysia({ name: "admin-events" })
    .get(
      "/admin/api/events",
      async ({ query }) => {
        const q = readQuery(query, deps);
        const page = await search().search(q);
        return {
          events: page.events.map((f) => f.event),
          next: page.before === null ? null : encodeCursor(page.before),
        };
      },
      {
        query: EventsQuery,
        response: { 200: EventsBody, ...ADMIN_ERRORS, 501: ErrorBody },
        detail: {
          tags: [ADMIN_TAG],
          summary: "Search the stored events, newest first, a page at a time",
          description:
            "Exact matches on messageId, userId, anonymousId and event name, narrowed by source, type and a receivedAt range. `next` is null on the last page. A page may hold fewer than `limit` events and still have a `next`: a search walks a bounded part of the index per request, so its time stays flat however large the log.",
          security: ADMIN_SECURITY,
        },
      },
    )
    .get(
      "/admin/api/events/:sourceId/:messageId",
      async ({ params }) => {
        const found = await search().find(params.sourceId, params.messageId);
        if (!found)
          throw new SluiceError("not_found", "no stored event with this source and messageId");
        const { event, ref, storedAt } = found;
        return {
          event,
          path: {
            receivedAt: event.receivedAt,
            // Known for events stored since the index kept it (null for older ones).
            storedAt: storedAt === null ? null : new Date(storedAt).toISOString(),
            position: ref,
            connections: await admin.delivery.eventPath({
              sourceId: event.sourceId,
              messageId: event.messageId,
              receivedAt: Date.parse(event.receivedAt),
              ref,
            }),
          },
        };
      },
      {
        params: t.Object({ sourceId: t.String(), messageId: t.String() }),
        response: { 200: EventDetailBody, ...ADMIN_ERRORS, 404: ErrorBody, 501: ErrorBody },
        detail: {
          tags: [ADMIN_TAG],
          summary:
            "One stored event and its path: received, stored, each connection's functions, delivery attempts, dead letter, replays",
          security: ADMIN_SECURITY,
        },
      },
    );
}
