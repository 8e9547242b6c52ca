import { badRequest, unauthorized } from "../errors.ts";
import { MAX_EVENT_DEPTH, nestedDeeperThan, TOO_DEEP, UNSERIALISABLE } from "../events/json.ts";
import { AnalyticsEvent } from "../events/schema.ts";
import type { HttpDeps } from "./deps.ts";
import { chargeRate, singleEvent } from "./request.ts";
import { FunctionRunResult, NoBody } from "./responses.ts";
import { errors, jsonBody, routeGroup } from "./route.ts";

/** Request headers user code never sees (SPEC 7: ctx.headers has credentials removed). */
const CREDENTIAL_HEADERS = new Set([
  "authorization",
  "proxy-authorization",
  "x-write-key",
  "cookie",
]);

/**
 * `POST /api/funcs/{conId}`: runs a connection's function chain on one event and
 * answers what it made of it (`{events, execLog, logs}`); nothing is stored. The
 * connection must belong to the key's source (else 401, as for an unknown id), and
 * is checked before the event is charged.
 */
export function funcsRoutes(deps: HttpDeps) {
  return routeGroup("funcs", deps).post(
    "/api/funcs/:conId",
    async ({ key, body, bytes, request, set, params }) => {
      const connection = deps.config.connections.find((c) => c.id === params.conId);
      if (!connection || connection.source !== key.source.id) {
        throw unauthorized("unknown connection for this write key");
      }
      await chargeRate(deps, key, 1, set.headers);
      const event = singleEvent(body, bytes, deps.config.limits.maxEventBytes);
      if (nestedDeeperThan(event, MAX_EVENT_DEPTH)) throw badRequest(TOO_DEEP);
      if (connection.functions.length === 0) return new Response(null, { status: 204 });
      if (!deps.functions) throw new Error("the function runtime is not running");
      const { writeKey: _key, ...userEvent } = event;
      let result: string;
      try {
        result = await deps.functions.runJson({
          connectionId: connection.id,
          event: userEvent,
          headers: visibleHeaders(request.headers),
          sourceType: key.type === "browser" ? "browser" : "s2s",
          receivedAt: Date.now(),
          retries: 0,
        });
      } catch (err) {
        // The call is serialised for the function host; only that throws a RangeError.
        if (err instanceof RangeError) throw badRequest(UNSERIALISABLE);
        throw err;
      }
      // Already the JSON of {events, execLog, logs}, as the worker wrote it.
      return new Response(result, { headers: { "content-type": "application/json" } });
    },
    {
      writeKey: { cost: 0, body: "strict-json" },
      parse: "none",
      response: {
        200: FunctionRunResult,
        204: NoBody("The connection has no functions."),
        ...errors(400, 403, 413, 415, 503, 504),
      },
      detail: {
        tags: ["functions"],
        operationId: "runFunctions",
        summary: "Run a connection's function chain on one event (not stored)",
        parameters: [
          {
            name: "conId",
            in: "path",
            required: true,
            description: "A connection of the key's source.",
            schema: { type: "string" },
          },
        ],
        requestBody: jsonBody(AnalyticsEvent, "One event.", true),
      },
    },
  );
}

function visibleHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) {
    if (!CREDENTIAL_HEADERS.has(name)) out[name] = value;
  }
  return out;
}
