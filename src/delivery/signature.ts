/**
 * `X-Sluice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
 * (Stripe's scheme): the receiver recomputes it over the raw body with the shared
 * secret, compares in constant time, and refuses old timestamps against replay.
 */
export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  const mac = new Bun.CryptoHasher("sha256", secret).update(`${unixSeconds}.${body}`);
  return `t=${unixSeconds},v1=${mac.digest("hex")}`;
}
