import type { FetchRequest, FetchResponse } from "./protocol.ts";

/** `init` of ctx.fetch: the standard RequestInit plus a per-call timeout. */
export type FetchInit = RequestInit & { timeoutMs?: number };

/** Carries a request to the server and brings back its response (see fetch-proxy.ts). */
export type FetchTransport = (request: FetchRequest) => Promise<FetchResponse>;

/** Most a ctx.fetch request body may hold (the server refuses more too). */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * ctx.fetch inside the worker: the standard fetch signature, carried out by the server
 * (the host has no network; the server applies SPEC 7's policy: http and https only,
 * no loopback, link-local or private address unless allowed). Aborted with a
 * TimeoutError after `timeoutMs` (`init.timeoutMs` if given, else the function's own
 * timeout), so a slow endpoint fails the request rather than hanging the chain.
 */
export function proxiedFetch(defaultTimeoutMs: number, send: FetchTransport) {
  return async (input: string | URL | Request, init: FetchInit = {}): Promise<Response> => {
    const { timeoutMs = defaultTimeoutMs, ...rest } = init;
    const limit = Math.max(1, Number(timeoutMs) || defaultTimeoutMs);
    const timeout = AbortSignal.timeout(limit);
    const signal = rest.signal ? AbortSignal.any([rest.signal, timeout]) : timeout;
    // The standard parsing of every input form (URL, Request, headers object, body types).
    const req = new Request(input as Request, { ...rest, signal: undefined });
    const body = req.body ? Buffer.from(await req.arrayBuffer()) : undefined;
    if (body && body.length > MAX_BODY_BYTES) {
      throw new TypeError(`ctx.fetch request body is over ${MAX_BODY_BYTES / 1048576} MB`);
    }
    signal.throwIfAborted();
    const sent = send({
      url: req.url,
      method: req.method,
      headers: [...req.headers],
      body: body?.toString("base64"),
      redirect: req.redirect === "manual" || req.redirect === "error" ? req.redirect : "follow",
      timeoutMs: limit,
    });
    const aborted = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
    const res = await Promise.race([sent, aborted]);
    return toResponse(res);
  };
}

/** A Response as fetch would have made it, with its final url and redirected flag. */
function toResponse(r: FetchResponse): Response {
  const noBody = r.status === 204 || r.status === 205 || r.status === 304;
  const response = new Response(noBody ? null : Buffer.from(r.body, "base64"), {
    status: r.status < 200 || r.status > 599 ? 200 : r.status,
    statusText: r.statusText,
    headers: r.headers,
  });
  Object.defineProperty(response, "url", { value: r.url });
  Object.defineProperty(response, "redirected", { value: r.redirected });
  return response;
}
