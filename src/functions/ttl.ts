/** The default lifetime of a `ctx.store` entry: 31 days (Jitsu's default). */
export const DEFAULT_TTL_SECONDS = 31 * 24 * 3600;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/**
 * A store ttl in seconds, or `null` for no expiry. Accepts a number of seconds,
 * a string such as "30", "30s", "15m", "12h", "7d", "2w", or "inf" (no expiry);
 * `undefined` gives the 31-day default. Throws a TypeError on anything else: a ttl
 * of zero or less would make `set` a silent delete.
 */
export function parseTtl(ttl: unknown): number | null {
  if (ttl === undefined) return DEFAULT_TTL_SECONDS;
  if (typeof ttl === "number") {
    if (ttl === Number.POSITIVE_INFINITY) return null;
    if (Number.isFinite(ttl) && ttl > 0) return ttl;
  } else if (typeof ttl === "string") {
    const text = ttl.trim().toLowerCase();
    if (text === "inf" || text === "infinity") return null;
    const m = /^(\d+(?:\.\d+)?)\s*([smhdw]?)$/.exec(text);
    if (m) {
      const seconds = Number(m[1]) * UNIT_SECONDS[m[2] || "s"]!;
      if (seconds > 0) return seconds;
    }
  }
  throw new TypeError(`invalid ttl ${JSON.stringify(ttl)}: use seconds, "30s", "7d" or "inf"`);
}
