import type { SourceConfig } from "../config/schema.ts";

/** Whether a browser page at `origin` may send to `source` (no list: any origin). */
export function originAllowed(source: SourceConfig, origin: string): boolean {
  const allowed = source.allowedOrigins;
  if (!allowed || allowed.length === 0) return true;
  return allowed.some((a) => a === "*" || a === origin);
}

/** Whether any source accepts `origin`: preflights carry no key, so this is all they can check. */
export function anySourceAllows(sources: SourceConfig[], origin: string): boolean {
  return sources.some((s) => originAllowed(s, origin));
}

/** CORS response headers for an allowed origin (reflected, with credentials). */
export function corsHeaders(origin: string): Record<string, string> {
  return {
    "access-control-allow-origin": origin,
    "access-control-allow-credentials": "true",
    "access-control-expose-headers":
      "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After",
    vary: "Origin",
  };
}

/** Extra headers of a preflight answer. */
export function preflightHeaders(request: Request): Record<string, string> {
  return {
    "access-control-allow-methods": "POST, GET, OPTIONS",
    "access-control-allow-headers":
      request.headers.get("access-control-request-headers") ??
      "Content-Type, Authorization, X-Write-Key, Content-Encoding",
    "access-control-max-age": "86400",
  };
}
