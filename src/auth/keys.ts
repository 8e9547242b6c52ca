import { randomBytes } from "node:crypto";

/** `sha256:<hex>` of the whole key string: the only form a key is kept in at rest. */
export function hashWriteKey(key: string): string {
  return `sha256:${new Bun.CryptoHasher("sha256").update(key).digest("hex")}`;
}

/** A fresh `keyId:secret` write key (the secret is 32 random bytes, base64url). */
export function generateWriteKey(keyId: string): string {
  return `${keyId}:${randomBytes(32).toString("base64url")}`;
}

/** A short random id for a new key, e.g. `wk_3f9a1c2b`. */
export function newKeyId(prefix = "wk"): string {
  return `${prefix}_${randomBytes(4).toString("hex")}`;
}
