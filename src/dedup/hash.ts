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

const DROP = 64n - 53n;

/**
 * wyhash keyed with a secret drawn when the store was created: a client cannot choose
 * messageIds that pile into one bucket without the secret, so nothing it sends makes
 * dedup slower for others. Each source gets its own seed (the secret hashed with the
 * source id), so hashing a key needs no string concatenation.
 */
export function keyedHash(secret: bigint): KeyHash {
  const seeds = new Map<string, bigint>();
  return {
    id: "wyhash-53",
    of(sourceId, messageId) {
      let seed = seeds.get(sourceId);
      if (seed === undefined) {
        seed = Bun.hash.wyhash(sourceId, secret);
        seeds.set(sourceId, seed);
      }
      return Number(Bun.hash.wyhash(messageId, seed) >> DROP);
    },
  };
}

/** A fresh 64-bit secret for `keyedHash`. */
export function newSecret(): bigint {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return new DataView(bytes.buffer).getBigUint64(0);
}
