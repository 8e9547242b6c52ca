import { lookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import type { FetchPolicy } from "./fetch-policy.ts";
import type { FetchRequest, FetchResponse } from "./protocol.ts";

/**
 * ctx.fetch as the server carries it out for a function host, which has no network
 * of its own (no sockets under its seccomp filter, no interface in its namespace).
 * The policy is checked on the URL, on every address the name resolves to and again
 * on every redirect, and the connection goes to the address that was checked.
 */

export const FETCH_LIMITS = {
  requestBytes: 10 * 1024 * 1024,
  responseBytes: 10 * 1024 * 1024,
  redirects: 20,
  /** Per function host; more wait their turn (so a host holds at most 8 × 10 MB here). */
  concurrent: 8,
  maxTimeoutMs: 5 * 60_000,
} as const;

/** A refusal or failure of ctx.fetch, as user code sees it (a TypeError, like fetch's). */
export class FetchRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TypeError";
  }
}

/** Performs one ctx.fetch request under `policy`; rejects with a message user code may see. */
export async function performFetch(policy: FetchPolicy, req: FetchRequest): Promise<FetchResponse> {
  const deadline = Date.now() + Math.min(Math.max(1, req.timeoutMs), FETCH_LIMITS.maxTimeoutMs);
  let url = parseUrl(req.url);
  let method = req.method.toUpperCase();
  let body = req.body === undefined ? undefined : Buffer.from(req.body, "base64");
  if (body && body.length > FETCH_LIMITS.requestBytes) {
    throw new FetchRefused(
      `ctx.fetch request body is over ${FETCH_LIMITS.requestBytes / 1048576} MB`,
    );
  }
  let headers = req.headers;
  for (let hop = 0; ; hop++) {
    const problem = policy.schemeProblem(url);
    if (problem) throw new FetchRefused(problem);
    const address = await resolveChecked(policy, url.hostname);
    const res = await send(url, address, method, headers, body, deadline);
    const location = res.headers.find(([k]) => k === "location")?.[1];
    if (!REDIRECTS.has(res.status) || location === undefined || req.redirect === "manual") {
      return { ...res, url: url.href, redirected: hop > 0 };
    }
    if (req.redirect === "error") throw new FetchRefused(`ctx.fetch got a redirect to ${location}`);
    if (hop >= FETCH_LIMITS.redirects) throw new FetchRefused("ctx.fetch: too many redirects");
    const next = parseUrl(new URL(location, url).href);
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === "POST")) {
      method = method === "HEAD" ? "HEAD" : "GET";
      body = undefined;
      headers = headers.filter(([k]) => !BODY_HEADERS.has(k.toLowerCase()));
    }
    if (next.origin !== url.origin) {
      headers = headers.filter(([k]) => !CREDENTIAL_HEADERS.has(k.toLowerCase()));
    }
    url = next;
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const BODY_HEADERS = new Set([
  "content-type",
  "content-length",
  "content-encoding",
  "content-language",
  "content-location",
]);
/** Dropped when a redirect leaves the origin, as fetch does. */
const CREDENTIAL_HEADERS = new Set(["authorization", "cookie", "proxy-authorization"]);

function parseUrl(text: string): URL {
  try {
    return new URL(text);
  } catch {
    throw new FetchRefused(`ctx.fetch: invalid URL ${JSON.stringify(text.slice(0, 200))}`);
  }
}

/** The address to connect to, every address of the name checked. */
async function resolveChecked(
  policy: FetchPolicy,
  hostname: string,
): Promise<{ address: string; family: number }> {
  const host = hostname.replace(/^\[|\]$/g, "");
  let addresses: { address: string; family: number }[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch (err) {
      throw new FetchRefused(
        `ctx.fetch: cannot resolve ${host} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
  }
  if (addresses.length === 0) throw new FetchRefused(`ctx.fetch: ${host} has no address`);
  for (const a of addresses) {
    const problem = policy.addressProblem(a.address);
    if (problem) throw new FetchRefused(problem);
  }
  return addresses[0]!;
}

interface RawResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  body: string;
}

function send(
  url: URL,
  address: { address: string; family: number },
  method: string,
  headers: [string, string][],
  body: Buffer | undefined,
  deadline: number,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const outgoing: Record<string, string | string[]> = {};
    for (const [k, v] of headers) {
      const key = k.toLowerCase();
      const had = outgoing[key];
      outgoing[key] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
    }
    outgoing["accept-encoding"] ??= "gzip, deflate, br";
    if (body) outgoing["content-length"] = String(body.length);
    const transport = url.protocol === "https:" ? https : http;
    const left = deadline - Date.now();
    if (left <= 0) return reject(timeoutError());
    const req = transport.request(
      {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ""),
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        method,
        headers: outgoing,
        // Connect to the address that was checked, whatever the name resolves to now.
        lookup: (_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) => {
          if (opts?.all) cb(null, [address]);
          else cb(null, address.address, address.family);
        },
        agent: false,
      } as http.RequestOptions,
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > FETCH_LIMITS.responseBytes) {
            req.destroy(
              new FetchRefused(
                `ctx.fetch response body is over ${FETCH_LIMITS.responseBytes / 1048576} MB`,
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on("error", (err) =>
          reject(err instanceof FetchRefused ? err : new FetchRefused(`ctx.fetch: ${err.message}`)),
        );
        res.on("end", () => {
          clearTimeout(timer);
          try {
            const { headers: out, body } = decode(res.rawHeaders, Buffer.concat(chunks));
            resolve({
              status: res.statusCode ?? 0,
              statusText: res.statusMessage ?? "",
              headers: out,
              body,
            });
          } catch (err) {
            reject(err);
          }
        });
      },
    );
    const timer = setTimeout(() => req.destroy(timeoutError()), left);
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(
        err instanceof FetchRefused || err.name === "TimeoutError"
          ? err
          : new FetchRefused(`ctx.fetch: ${err.message}`),
      );
    });
    req.end(body);
  });
}

/** Undoes Content-Encoding (fetch does it for the caller) and pairs the headers up. */
function decode(raw: string[], body: Buffer): { headers: [string, string][]; body: string } {
  const headers: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  const encoding = headers
    .find(([k]) => k === "content-encoding")?.[1]
    ?.trim()
    .toLowerCase();
  let decoded = body;
  const inflate = { maxOutputLength: FETCH_LIMITS.responseBytes };
  try {
    if (encoding === "gzip" || encoding === "x-gzip") decoded = gunzipSync(body, inflate);
    else if (encoding === "deflate") decoded = inflateSync(body, inflate);
    else if (encoding === "br") decoded = brotliDecompressSync(body, inflate);
  } catch (err) {
    throw new FetchRefused(
      `ctx.fetch: cannot decode the ${encoding} response (${(err as Error).message})`,
    );
  }
  const kept =
    decoded === body
      ? headers
      : headers.filter(([k]) => k !== "content-encoding" && k !== "content-length");
  return { headers: kept, body: decoded.toString("base64") };
}

function timeoutError(): Error {
  const err = new Error("ctx.fetch timed out");
  err.name = "TimeoutError";
  return err;
}
