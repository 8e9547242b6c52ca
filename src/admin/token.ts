import { randomBytes, timingSafeEqual } from "node:crypto";
import type { AdminTokenConfig } from "../config/schema.ts";

/** `sha256:<hex>` of the whole token string: the only form a token is kept in at rest. */
export function hashAdminToken(token: string): string {
  return `sha256:${new Bun.CryptoHasher("sha256").update(token).digest("hex")}`;
}

/** A fresh admin token `<id>:<secret>` (the secret is 32 random bytes, base64url). */
export function generateAdminToken(id: string): string {
  return `${id}:${randomBytes(32).toString("base64url")}`;
}

/** A short random id for a new token, e.g. `adm_3f9a1c2b`. */
export function newAdminTokenId(): string {
  return `adm_${randomBytes(4).toString("hex")}`;
}

/**
 * The configured token `presented` matches, or undefined. Every configured hash is
 * compared in constant time, so the answer's timing says nothing about which one
 * (or how much of one) matched.
 */
export function matchAdminToken(
  tokens: readonly AdminTokenConfig[],
  presented: string,
): AdminTokenConfig | undefined {
  if (presented === "") return undefined;
  const given = Buffer.from(hashAdminToken(presented));
  let found: AdminTokenConfig | undefined;
  for (const t of tokens) {
    const stored = Buffer.from(t.hash);
    if (stored.length === given.length && timingSafeEqual(stored, given)) found ??= t;
  }
  return found;
}

/** The bearer token of an `Authorization` header, or undefined. */
export function bearerToken(header: string | null): string | undefined {
  if (!header) return undefined;
  const space = header.indexOf(" ");
  if (space < 0 || header.slice(0, space).toLowerCase() !== "bearer") return undefined;
  const token = header.slice(space + 1).trim();
  return token === "" ? undefined : token;
}
