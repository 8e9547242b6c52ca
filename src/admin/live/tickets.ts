import { randomBytes } from "node:crypto";

export interface TicketOptions {
  /** How long a ticket may wait for its one use. */
  ttlMs?: number;
  /** Tickets outstanding at most (the oldest are forgotten past it). */
  max?: number;
  now?: () => number;
}

/**
 * Short-lived one-use tickets for `GET /admin/api/live?ticket=…`: a client that cannot
 * set an Authorization header (EventSource) trades its token for a ticket, so the
 * token itself never appears in a URL (or in a proxy's access log).
 */
export class LiveTickets {
  private readonly tickets = new Map<string, { expires: number; tokenId: string | null }>();
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;

  constructor(opts: TicketOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 30_000;
    this.max = opts.max ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /** A fresh ticket for the holder of admin token `tokenId` (null: loopback access). */
  issue(tokenId: string | null): { ticket: string; expiresAt: string } {
    this.prune();
    if (this.tickets.size >= this.max) {
      const oldest = this.tickets.keys().next().value;
      if (oldest !== undefined) this.tickets.delete(oldest);
    }
    const ticket = randomBytes(24).toString("base64url");
    const expires = this.now() + this.ttlMs;
    this.tickets.set(ticket, { expires, tokenId });
    return { ticket, expiresAt: new Date(expires).toISOString() };
  }

  /** Uses up a ticket: the token id it was issued for, or undefined if unknown, used or expired. */
  redeem(ticket: string): { tokenId: string | null } | undefined {
    const found = this.tickets.get(ticket);
    if (found === undefined) return undefined;
    this.tickets.delete(ticket);
    return found.expires > this.now() ? { tokenId: found.tokenId } : undefined;
  }

  private prune(): void {
    const now = this.now();
    for (const [ticket, t] of this.tickets) if (t.expires <= now) this.tickets.delete(ticket);
  }
}
