import { Elysia } from "elysia";
import { UNSERIALISABLE } from "../events/json.ts";
import { FunctionTimeoutError } from "../functions/errors.ts";
import { STRICT_JSON_TYPES } from "./body.ts";
import type { HttpDeps } from "./deps.ts";
import { badRequest, HttpError, unauthorized } from "./errors.ts";
import { authenticate, chargeRate, singleEvent } from "./request.ts";

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
 * connection must belong to the key's source (else 401, as for an unknown id).
 */
export function funcsRoutes(deps: HttpDeps) {
  return new Elysia({ name: "funcs" }).post(
    "/api/funcs/:conId",
    async ({ request, set, params }) => {
      const { key, body, bytes } = await authenticate(
        request,
        deps,
        set.headers,
        STRICT_JSON_TYPES,
      );
      const connection = deps.config.connections.find((c) => c.id === params.conId);
      if (!connection || connection.source !== key.source.id) {
        throw unauthorized("unknown connection for this write key");
      }
      await chargeRate(deps, key, 1, set.headers);
      const event = singleEvent(body, bytes, deps.config.limits.maxEventBytes);
      if (connection.functions.length === 0) {
        set.status = 204;
        return "";
      }
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
        if (err instanceof FunctionTimeoutError) {
          const body = err.functionId === undefined ? undefined : { functionId: err.functionId };
          throw new HttpError("timeout", err.message, body);
        }
        // The call is serialised for the function host; only that throws a RangeError.
        if (err instanceof RangeError) throw badRequest(UNSERIALISABLE);
        throw err;
      }
      // Already the JSON of {events, execLog, logs}, as the worker wrote it.
      set.headers["content-type"] = "application/json";
      return result;
    },
    { parse: "none" },
  );
}

function visibleHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) {
    if (!CREDENTIAL_HEADERS.has(name)) out[name] = value;
  }
  return out;
}
