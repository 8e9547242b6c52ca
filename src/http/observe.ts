import type { HttpDeps } from "./deps.ts";
import { SINGLE_OK } from "./responses.ts";

/** The part of Elysia's per-request context the observer reads and writes. */
interface ObservedContext {
  request: Request;
  set: { headers: Record<string, unknown>; status?: number | string };
  /** The matched route pattern (`/api/s/:type`); absent when nothing matched. */
  route?: string;
  /** performance.now() when the request arrived (set by `begin`). */
  sluiceStartedAt?: number;
  /** What the handler or the error mapper answered, before serialization. */
  responseValue?: unknown;
}

/** What Bun's Response.json sets. */
const JSON_TYPE = "application/json;charset=utf-8";
/** The body of every stored single event's answer; the Blob's type is its content-type. */
const SINGLE_OK_BODY = new Blob([JSON.stringify(SINGLE_OK)], { type: JSON_TYPE });

/**
 * Whether an answer is `SINGLE_OK` (or the copy of it Elysia's response schema makes):
 * `{"ok":true,"success":true}`, those two keys in that order.
 */
function isSingleOk(value: Record<string, unknown>): boolean {
  if (value.ok !== true || value.success !== true) return false;
  const keys = Object.keys(value);
  return keys.length === 2 && keys[0] === "ok";
}

export const REQUEST_ID_HEADER = "x-request-id";
/** A proxy's request id is kept (behind `trustProxy`) only when it looks like an id. */
const INBOUND_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Per-process prefix; request ids are `<prefix>-<sequence in base 36>`. */
const PREFIX = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) =>
  b.toString(16).padStart(2, "0"),
).join("");
let sequence = 0;

/**
 * The matched route's pattern for logs and metrics (`/api/s/:type`), or `unmatched`.
 * Takes the pattern, not the context: Elysia reads its hooks' source, and a hook that
 * hands its context whole to a function makes it build everything (a headers object,
 * cookies, the query) for every request.
 */
export function routeOf(route: string | undefined): string {
  return route || "unmatched";
}

/**
 * The `error` of an answer's body, as a hook that runs after `end` sees it: the body
 * object, or its JSON text once `end` has serialised it.
 */
export function answerError(value: unknown): string | undefined {
  let body = value;
  if (typeof value === "string" && value.startsWith("{")) {
    try {
      body = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  const error = (body as { error?: unknown } | null | undefined)?.error;
  return typeof error === "string" ? error : undefined;
}

/** The request id set on a response (and on every log line about its request). */
export function requestIdOf(set: { headers: Record<string, unknown> }): string | undefined {
  const id = set.headers[REQUEST_ID_HEADER];
  return typeof id === "string" ? id : undefined;
}

/**
 * Request ids, timing, request metrics and sampled success lines. `begin` runs first
 * in onRequest; `end` runs as a mapResponse hook, which Elysia calls for every answer
 * (handled, failed, unmatched) once its status is known, just before serializing it.
 * (onAfterResponse would also see every answer, but costs a setImmediate and a
 * closure per request: a third of the throughput of a trivial route.) `end` always
 * returns the answer: a JSON value as a ready Response (200) or as its text (errors),
 * anything else unchanged. Elysia 1.4's global error path (404s, errors thrown in
 * onRequest) replaces the response with whatever a mapResponse hook returns,
 * undefined included, while every other path ignores undefined and takes a value as
 * the response. Failed requests are logged by the error mapper, with their reason;
 * `end` logs only a sample of the successful ones.
 */
export function requestObserver(deps: HttpDeps) {
  let owed = 0;
  /** Deterministic sampling: with rate r, one line per 1/r successes. */
  const sampled = (rate: number) => {
    owed += rate;
    if (owed < 1) return false;
    owed -= 1;
    return true;
  };

  const begin = (ctx: ObservedContext) => {
    ctx.sluiceStartedAt = performance.now();
    const inbound = deps.config.server.trustProxy
      ? ctx.request.headers.get(REQUEST_ID_HEADER)
      : null;
    ctx.set.headers[REQUEST_ID_HEADER] =
      inbound && INBOUND_ID.test(inbound) ? inbound : `${PREFIX}-${(++sequence).toString(36)}`;
  };

  const end = ({
    request,
    set,
    route: pattern,
    sluiceStartedAt,
    responseValue,
  }: ObservedContext) => {
    const seconds =
      sluiceStartedAt === undefined ? 0 : (performance.now() - sluiceStartedAt) / 1000;
    const status = typeof set.status === "number" ? set.status : 200;
    const route = routeOf(pattern);
    const method = request.method;
    deps.metrics?.request(method, route, status, seconds);
    if (status < 400 && sampled(deps.config.logger.successSampleRate)) {
      deps.logger.info(
        {
          requestId: requestIdOf(set),
          method,
          route,
          status,
          ms: Math.round(seconds * 10_000) / 10,
        },
        "request",
      );
    }
    if (status >= 400 && deps.onRequestFailed !== undefined) {
      const body = responseValue as { error?: unknown } | undefined;
      deps.onRequestFailed({
        request,
        route,
        status,
        error: typeof body?.error === "string" ? body.error : `status ${status}`,
        requestId: requestIdOf(set),
      });
    }
    const kind = (responseValue as object | null | undefined)?.constructor;
    if (kind === Object || kind === Array) {
      // A 200 is answered here, whole: its headers go into the Response and leave `set`
      // empty, so Elysia hands the Response on as it is (with headers left in `set` it
      // would copy them into a second one). The single-event answer's body is one Blob,
      // made once, whose type is the content-type: no text to encode and one header
      // fewer per answer (bench/RESULTS.md, "Sixth session: the answer").
      // `set` is emptied only once the Response exists: if the JSON cannot be made (a
      // BigInt, a cycle), the 500 that follows keeps the request id and the headers.
      if (status === 200) {
        const headers = set.headers as Record<string, string>;
        let answer: Response;
        if (isSingleOk(responseValue as Record<string, unknown>)) {
          answer = new Response(SINGLE_OK_BODY, { headers });
        } else {
          const body = JSON.stringify(responseValue);
          headers["content-type"] = JSON_TYPE;
          answer = new Response(body, { headers });
        }
        set.headers = Object.create(null);
        return answer;
      }
      // An error as text, its status and headers left to Elysia: a route's own
      // mapResponse hook (the beacon's) still reads them after this one. Elysia would
      // make the answer with Response.json, which costs twice as much as a Response of
      // the same JSON.stringify (measured in Bun 1.4).
      set.headers["content-type"] = JSON_TYPE;
      return JSON.stringify(responseValue) as unknown as Response;
    }
    // Typed as Response by Elysia; any other value passes through its mapping unchanged.
    return responseValue as Response | undefined;
  };

  return { begin, end };
}
