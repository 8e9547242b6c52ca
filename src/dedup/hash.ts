/**
 * A dedup key's hash: 53 bits, the widest integer a JS number and a SQLite INTEGER both
 * hold exactly, so it needs no BigInt on the hot path. Keys with equal hashes are told
 * apart by the full key kept beside the hash on disk (and in memory until written).
 */
export interface KeyHash {
  /** Names the function; stored with the keys, which are discarded if it ever changes. */
  readonly id: string;
  /** An integer in [0, 2^53) for (sourceId, messageId). */
  of(sourceId: string, messageId: string): number;
}

const TWO_POW_21 = 2_097_152;

/**
 * Two 32-bit xxHash32 values of the messageId under two secret seeds per source, drawn
 * from a 64-bit secret made when the store was created: without the secret, a client
 * cannot choose messageIds that crowd one place of the filter, so nothing it sends makes
 * dedup slower for others. (Ids that collide outright cost nothing extra: they share one
 * filter entry, and a disk lookup seeks the full key.) Two xxHash32 calls cost about a
 * third of one 64-bit wyhash, whose BigInt result must be converted.
 */
export function keyedHash(secret: bigint): KeyHash {
  const hi = Number(secret >> 32n) >>> 0;
  const lo = Number(secret & 0xffffffffn) >>> 0;
  const seeds = new Map<string, [number, number]>();
  let lastSource = "";
  let last: [number, number] = [0, 0];
  return {
    id: "xxh32x2-53",
    of(sourceId, messageId) {
      if (sourceId !== lastSource) {
        let s = seeds.get(sourceId);
        if (!s) {
          s = [Bun.hash.xxHash32(sourceId, hi), Bun.hash.xxHash32(sourceId, lo)];
          seeds.set(sourceId, s);
        }
        lastSource = sourceId;
        last = s;
      }
      const a = Bun.hash.xxHash32(messageId, last[0]);
      const b = Bun.hash.xxHash32(messageId, last[1]);
      return a * TWO_POW_21 + (b >>> 11);
    },
  };
}

/** A fresh 64-bit secret for `keyedHash`. */
export function newSecret(): bigint {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return new DataView(bytes.buffer).getBigUint64(0);
}
