import type { Server } from "bun";
import type { SluiceConfig } from "../../config/schema.ts";
import { SluiceError } from "../../errors.ts";
import type { LiveTickets } from "../live/tickets.ts";
import { bearerToken, matchAdminToken } from "../token.ts";

/** How a request to the admin API was let in. */
export interface AdminAccess {
  via: "token" | "ticket" | "loopback";
  /** The admin token's id (never the token); null on loopback without tokens. */
  tokenId: string | null;
}

const CORS_HEADERS = [
  "access-control-allow-origin",
  "access-control-allow-credentials",
  "access-control-expose-headers",
];
const FORWARDED = ["forwarded", "x-forwarded-for", "x-real-ip"];
const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;

const granted = new WeakMap<Request, AdminAccess>();

/** How an authorized request was let in (set by `authorizeAdmin`). */
export function accessOf(request: Request): AdminAccess {
  const access = granted.get(request);
  if (access === undefined) throw new Error("admin route reached without authorization");
  return access;
}

export const wrongToken = () => new SluiceError("unauthorized", "missing or wrong admin token");

/**
 * Lets a request to the inspector's API in, or throws: 401 for a missing or wrong
 * admin token (nothing else is said), 403 for a cross-origin browser request or,
 * with no token configured, for anything but a direct loopback request. `ticket` is
 * the one-use live ticket a request carries instead of the token.
 */
export function authorizeAdmin(
  request: Request,
  server: Server<unknown> | null,
  config: SluiceConfig,
  headers: Record<string, unknown>,
  ticket?: { value: string; tickets: LiveTickets },
): AdminAccess {
  const access = decide(request, server, config, headers, ticket);
  granted.set(request, access);
  return access;
}

function decide(
  request: Request,
  server: Server<unknown> | null,
  config: SluiceConfig,
  headers: Record<string, unknown>,
  ticket?: { value: string; tickets: LiveTickets },
): AdminAccess {
  // Sources' CORS answers are for ingest; a page elsewhere never reads this API.
  for (const h of CORS_HEADERS) delete headers[h];
  refuseCrossOrigin(request);
  const tokens = config.admin.tokens;
  if (tokens.length === 0) {
    if (!isDirectLoopback(request, server)) {
      throw new SluiceError(
        "forbidden",
        "the inspector answers only on loopback until an admin token is configured (sluice admin token create)",
      );
    }
    if (ticket && !ticket.tickets.redeem(ticket.value)) throw wrongToken();
    return { via: "loopback", tokenId: null };
  }
  if (ticket) {
    const redeemed = ticket.tickets.redeem(ticket.value);
    // A ticket outlives no token: one issued for a token since revoked is refused.
    if (redeemed?.tokenId && tokens.some((t) => t.id === redeemed.tokenId)) {
      return { via: "ticket", tokenId: redeemed.tokenId };
    }
    throw wrongToken();
  }
  const presented = bearerToken(request.headers.get("authorization"));
  const match = presented === undefined ? undefined : matchAdminToken(tokens, presented);
  if (!match) throw wrongToken();
  return { via: "token", tokenId: match.id };
}

/** Whether the page itself may be served: anywhere once tokens exist, else on loopback only. */
export function pageAllowed(
  request: Request,
  server: Server<unknown> | null,
  config: SluiceConfig,
): boolean {
  return config.admin.tokens.length > 0 || isDirectLoopback(request, server);
}

/**
 * A browser request from another origin (a page on another site or port) is refused,
 * so that a web page cannot drive the admin API of a server on the user's machine.
 */
function refuseCrossOrigin(request: Request): void {
  const site = request.headers.get("sec-fetch-site");
  const origin = request.headers.get("origin");
  const host = request.headers.get("host");
  let sameOrigin = true;
  if (origin !== null) {
    try {
      sameOrigin = new URL(origin).host === host;
    } catch {
      sameOrigin = false;
    }
  }
  if (site === "cross-site" || site === "same-site" || !sameOrigin) {
    throw new SluiceError("forbidden", "cross-origin requests to the admin API are refused");
  }
}

/**
 * The peer is this machine, no proxy forwarded the request, and the Host header names
 * loopback (a DNS name pointed at 127.0.0.1 by a web page's site is not let in).
 */
function isDirectLoopback(request: Request, server: Server<unknown> | null): boolean {
  const address = server?.requestIP(request)?.address ?? "";
  const peer = address.startsWith("::ffff:") ? address.slice(7) : address;
  if (!(peer === "::1" || /^127\./.test(peer))) return false;
  if (FORWARDED.some((h) => request.headers.has(h))) return false;
  return LOOPBACK_HOST.test(request.headers.get("host") ?? "");
}
