import { type DocumentDecoration, Elysia } from "elysia";
import { keyFromBody, keyFromHeaders, type ResolvedKey } from "../auth/resolve.ts";
import { SluiceError, unauthorized } from "../errors.ts";
import { readJsonBody, STRICT_JSON_TYPES } from "./body.ts";
import { originAllowed } from "./cors.ts";
import type { HttpDeps } from "./deps.ts";
import { chargeRate, refundRate } from "./request.ts";

/** How a route takes its write key (the `writeKey` route option). */
export interface WriteKeyOptions {
  /**
   * Tokens charged before the body is read, so that a 429 costs almost nothing: the
   * number of events the request carries (1 on single-event routes), 0 for routes that
   * store nothing, or `"batch"`: the count is known only after parsing, so the request
   * is refused at once when the bucket holds less than one token, and the handler
   * charges the exact count (`chargeRate`) once it has it.
   */
  cost: number | "batch";
  /**
   * Read the JSON body (SPEC 3's content types, gzip, limits): `json`, or
   * `strict-json` (application/json only). Its `writeKey` field authenticates when
   * neither headers nor query carry a key. Without it the route reads no body.
   */
  body?: "json" | "strict-json";
  /** Only server keys (401 for a browser key): the `/api/s/s2s/*` routes. */
  serverOnly?: boolean;
  /** The path parameter that carries the key (`/v1/projects/:writeKey/settings`). */
  param?: string;
}

/** What the macro puts in the handler's context (a type, not an interface: Elysia needs an index-compatible object type). */
export type WriteKeyContext = {
  key: ResolvedKey;
  /** The parsed JSON body (undefined without `body`). */
  body: unknown;
  /** Size of the (decompressed) JSON body in bytes (0 without `body`). */
  bytes: number;
};

/**
 * The write-key check as an Elysia macro: a route declares `writeKey: { cost, body }`
 * and its handler receives `key`, `body` and `bytes`. The key comes from (SPEC 3)
 * Basic, Bearer, X-Write-Key, the `writeKey`/`writekey` query parameter, a path
 * parameter, or last the body's `writeKey` field. 401 on a missing or unknown key (or
 * a browser key on a server-only route), 403 for a browser key from an origin its
 * source does not allow, 429 when the bucket cannot pay `cost`. From the moment the
 * key is known every answer, errors included, carries the X-RateLimit-* headers.
 * A request whose body cannot be read after it was charged is refunded: malformed
 * input costs no tokens.
 */
export function writeKeyAuth(deps: HttpDeps) {
  return new Elysia().macro({
    writeKey: (options: WriteKeyOptions) => ({
      // Read by the OpenAPI document: key schemes (none when the path carries the
      // key), 401, 429 and the X-RateLimit-* headers.
      detail: {
        [WRITE_KEY_MARK]: options.param === undefined ? "request" : "path",
      } as DocumentDecoration,
      resolve: ({ request, set, params }) =>
        authenticate(
          deps,
          request,
          set.headers as Headers,
          options,
          params as Record<string, string | undefined>,
        ),
    }),
  });
}

/** The `detail` field by which the OpenAPI document knows a route takes a write key. */
export const WRITE_KEY_MARK = "x-sluice-write-key";

type Headers = Record<string, string | number>;

/**
 * Everything known before the body, synchronously when the rate limiter is (a refusal
 * then costs no promise), then the body (`readKeyedBody`).
 */
function authenticate(
  deps: HttpDeps,
  request: Request,
  headers: Headers,
  options: WriteKeyOptions,
  params: Record<string, string | undefined>,
): WriteKeyContext | Promise<WriteKeyContext> {
  const inPath = options.param === undefined ? undefined : params[options.param];
  const given =
    inPath !== undefined
      ? decodeURIComponent(inPath)
      : keyFromHeaders(request.headers, request.url);
  let key: ResolvedKey | undefined;
  if (given !== undefined) {
    key = deps.keys.resolve(given);
    if (!key) throw unauthorized();
    admissible(key, request, options);
    const admitted = admit(deps, key, options.cost, headers);
    if (admitted instanceof Promise) {
      const known = key;
      return admitted.then((charged) =>
        readKeyedBody(deps, request, headers, options, known, charged),
      );
    }
    return readKeyedBody(deps, request, headers, options, key, admitted);
  }
  return readKeyedBody(deps, request, headers, options, undefined, 0);
}

/** The body (if the route reads one), and the key from it when the request had none. */
async function readKeyedBody(
  deps: HttpDeps,
  request: Request,
  headers: Headers,
  options: WriteKeyOptions,
  known: ResolvedKey | undefined,
  charged: number,
): Promise<WriteKeyContext> {
  let key = known;
  if (options.body === undefined) {
    if (!key) throw unauthorized();
    return { key, body: undefined, bytes: 0 };
  }
  const types = options.body === "strict-json" ? STRICT_JSON_TYPES : undefined;
  let read: Awaited<ReturnType<typeof readJsonBody>>;
  try {
    read = await readJsonBody(request, deps.config.limits, types);
  } catch (err) {
    if (key && charged > 0) await refundRate(deps, key, charged, headers);
    throw err;
  }
  if (!key) {
    const fromBody = keyFromBody(read.value);
    key = fromBody === undefined ? undefined : deps.keys.resolve(fromBody);
    if (!key) throw unauthorized();
    admissible(key, request, options);
    await admit(deps, key, options.cost, headers);
  }
  return { key, body: read.value, bytes: read.bytes };
}

/** 401 for a browser key on a server-only route; 403 for an origin the source does not allow. */
function admissible(key: ResolvedKey, request: Request, options: WriteKeyOptions): void {
  if (key.type !== "browser") return;
  if (options.serverOnly) {
    throw new SluiceError("unauthorized", "this endpoint needs a server write key");
  }
  const origin = request.headers.get("origin");
  if (origin && !originAllowed(key.source, origin)) {
    throw new SluiceError("forbidden", "origin not allowed for this source");
  }
}

/** Charges what is known before the body is read; returns the tokens taken. */
function admit(
  deps: HttpDeps,
  key: ResolvedKey,
  cost: number | "batch",
  headers: Headers,
): number | Promise<number> {
  // A batch holds at least one event: with less than a token it cannot fit, whatever its size.
  const charged = cost === "batch" ? 0 : cost;
  const pending =
    cost === "batch" ? chargeRate(deps, key, 0, headers, 1) : chargeRate(deps, key, cost, headers);
  return pending === undefined ? charged : pending.then(() => charged);
}
