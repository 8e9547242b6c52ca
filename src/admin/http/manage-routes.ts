import { Elysia, t } from "elysia";
import { SluiceError } from "../../errors.ts";
import type { HttpDeps } from "../../http/deps.ts";
import { ErrorBody } from "../../http/responses.ts";
import type { ControlOutcome } from "../delivery/control.ts";
import type { AdminServices } from "../services.ts";
import { badParameter, timeParam } from "./params.ts";
import {
  ActionBody,
  ADMIN_ERRORS,
  ADMIN_SECURITY,
  ADMIN_TAG,
  ConnectionsBody,
  ReplayRequest,
  SourcesBody,
} from "./schemas.ts";

const ACTION_ERRORS = { ...ADMIN_ERRORS, 404: ErrorBody, 501: ErrorBody };

/** The answer for a control action's outcome. */
function answer(outcome: ControlOutcome) {
  if (outcome.ok) return { ok: true as const, ...outcome.detail };
  if (outcome.reason === "not_found") throw new SluiceError("not_found", "unknown connection");
  if (outcome.reason === "unavailable") {
    throw new SluiceError("not_implemented", outcome.message ?? "not available yet");
  }
  throw new SluiceError("bad_request", outcome.message ?? "invalid request");
}

/** Sources with their rates, connections with their state, and the actions on them. */
export function manageRoutes(deps: HttpDeps, admin: AdminServices) {
  const action = (name: "pause" | "resume" | "redrive", summary: string) =>
    new Elysia({ name: `admin-${name}` }).post(
      `/admin/api/connections/:id/${name}`,
      async ({ params }) => {
        return answer(await admin.delivery[name](params.id));
      },
      {
        parse: "none",
        params: t.Object({ id: t.String() }),
        response: { 200: ActionBody, ...ACTION_ERRORS },
        detail: { tags: [ADMIN_TAG], summary, security: ADMIN_SECURITY },
      },
    );

  return new Elysia({ name: "admin-manage" })
    .get(
      "/admin/api/sources",
      () => {
        const { sources, connections } = deps.config;
        return {
          sources: sources.map((s) => ({
            id: s.id,
            name: s.name ?? s.id,
            keys: s.writeKeys.map((k) => ({ id: k.id, type: k.type })),
            connections: connections.filter((c) => c.source === s.id).map((c) => c.id),
            minutes: admin.rates.lastHour(s.id),
          })),
        };
      },
      {
        response: { 200: SourcesBody, ...ADMIN_ERRORS },
        detail: {
          tags: [ADMIN_TAG],
          summary: "Sources, their key ids and types, and events per minute over the last hour",
          security: ADMIN_SECURITY,
        },
      },
    )
    .get(
      "/admin/api/connections",
      () => {
        return { connections: admin.delivery.connections() };
      },
      {
        response: { 200: ConnectionsBody, ...ADMIN_ERRORS },
        detail: {
          tags: [ADMIN_TAG],
          summary: "Each connection's delivery state: lag, last success and error, dead letters",
          security: ADMIN_SECURITY,
        },
      },
    )
    .use(action("pause", "Pause a connection's delivery"))
    .use(action("resume", "Resume a paused connection"))
    .use(action("redrive", "Send a connection's dead letters again"))
    .post(
      "/admin/api/connections/:id/replay",
      async ({ request, params }) => {
        const range = readReplay(await jsonBody(request));
        return answer(await admin.delivery.replay(params.id, range));
      },
      {
        parse: "none",
        params: t.Object({ id: t.String() }),
        response: { 200: ActionBody, ...ACTION_ERRORS },
        detail: {
          tags: [ADMIN_TAG],
          summary: "Re-send stored events received in [from, to) through the connection",
          security: ADMIN_SECURITY,
          requestBody: {
            content: { "application/json": { schema: ReplayRequest } },
          },
        },
      },
    );
}

/** The request's JSON body (read after authorization: a stranger learns nothing from a 400). */
async function jsonBody(request: Request): Promise<unknown> {
  const text = await request.text();
  try {
    return JSON.parse(text);
  } catch {
    throw badParameter("body", "malformed JSON");
  }
}

function readReplay(body: unknown): { from: Date; to?: Date } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badParameter("body", "must be a JSON object {from, to?}");
  }
  const { from, to } = body as { from?: unknown; to?: unknown };
  if (typeof from !== "string" && typeof from !== "number") {
    throw badParameter("from", "required: an ISO-8601 time");
  }
  if (to !== undefined && typeof to !== "string" && typeof to !== "number") {
    throw badParameter("to", "not a time (ISO-8601 or milliseconds since the epoch)");
  }
  const start = timeParam("from", String(from))!;
  const end = to === undefined ? undefined : timeParam("to", String(to));
  if (end !== undefined && end <= start) throw badParameter("to", "must be after from");
  return { from: start, to: end };
}
