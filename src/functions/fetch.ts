/** `init` of ctx.fetch: the standard RequestInit plus a per-call timeout. */
export type FetchInit = RequestInit & { timeoutMs?: number };

/**
 * ctx.fetch: the standard fetch, aborted with a TimeoutError after `timeoutMs`
 * (`init.timeoutMs` if given, else the function's own timeout), so a slow endpoint
 * fails the request rather than hanging the chain until it is cut off.
 */
export function fetchWithTimeout(defaultTimeoutMs: number) {
  return (input: string | URL | Request, init: FetchInit = {}): Promise<Response> => {
    const { timeoutMs = defaultTimeoutMs, ...rest } = init;
    const timeout = AbortSignal.timeout(Math.max(1, timeoutMs));
    const signal = rest.signal ? AbortSignal.any([rest.signal, timeout]) : timeout;
    return fetch(input, { ...rest, signal });
  };
}
