/** Anything after `/v1/projects/` is where a write key travels in a path. */
const PROJECT = /^\/v1\/projects\/[^/]*/;

/**
 * The request path as it may be logged: the write-key segment of
 * `/v1/projects/{writeKey}/…` is masked whatever follows it (a trailing slash, a
 * mistyped suffix, nothing), and the query string (where `writeKey` may be) is dropped.
 */
export function loggablePath(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const end = url.indexOf("?", start);
  const path = url.slice(start, end < 0 ? undefined : end);
  return path.replace(PROJECT, "/v1/projects/:writeKey");
}
