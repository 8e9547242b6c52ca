import type { ServerConfig } from "../config/schema.ts";

/** Where browsers reach this server: the scheme, and host (+ path prefix, no trailing slash). */
export interface PublicBase {
  protocol: "http" | "https";
  /** `host[:port][/prefix]`, the form Segment's `apiHost` takes. */
  host: string;
}

/**
 * This server as the browser that sent `request` reaches it: `server.publicUrl` when
 * set (a proxy that rewrites Host, or a path prefix), else the request's own URL, with
 * X-Forwarded-Proto / X-Forwarded-Host only behind a trusted proxy (else any client
 * could point the SDK settings it receives at another host).
 */
export function publicBase(request: Request, server: ServerConfig): PublicBase {
  if (server.publicUrl) {
    const u = new URL(server.publicUrl);
    return {
      protocol: u.protocol === "http:" ? "http" : "https",
      host: `${u.host}${u.pathname.replace(/\/+$/, "")}`,
    };
  }
  const url = new URL(request.url);
  const forwarded = (name: string) =>
    server.trustProxy ? request.headers.get(name)?.split(",")[0]?.trim() || undefined : undefined;
  const proto = forwarded("x-forwarded-proto") ?? url.protocol.replace(":", "");
  return {
    protocol: proto === "https" ? "https" : "http",
    host: forwarded("x-forwarded-host") ?? url.host,
  };
}
