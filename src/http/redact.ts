const PROJECT_SETTINGS = /^\/v1\/projects\/[^/]+\/settings$/;

/** The request path as it may be logged: a write key in the path is masked. */
export function loggablePath(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const end = url.indexOf("?", start);
  const path = url.slice(start, end < 0 ? undefined : end);
  return PROJECT_SETTINGS.test(path) ? "/v1/projects/:writeKey/settings" : path;
}
