/**
 * The limits of `ctx.store` (SPEC 7). Each function of each connection has its own
 * keys; these bound what one of them may keep, so a function cannot fill the disk or
 * stall the server with one huge value.
 */
export const STORE_LIMITS = {
  /** One value, as JSON text. */
  valueBytes: 64 * 1024,
  /** One key. */
  keyBytes: 1024,
  /** Keys and values of one function, together. */
  totalBytes: 10 * 1024 * 1024,
  keys: 10_000,
} as const;

/** A store write refused by a quota; the message says which and by how much. */
export class StoreQuotaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreQuotaError";
  }
}

/** Checks a key and a JSON value against the per-entry limits (before anything is stored). */
export function checkEntrySize(key: string, json?: string): void {
  const keyBytes = Buffer.byteLength(key);
  if (keyBytes > STORE_LIMITS.keyBytes) {
    throw new StoreQuotaError(
      `store key is ${keyBytes} bytes; at most ${STORE_LIMITS.keyBytes} are allowed`,
    );
  }
  if (json === undefined) return;
  const valueBytes = Buffer.byteLength(json);
  if (valueBytes > STORE_LIMITS.valueBytes) {
    throw new StoreQuotaError(
      `store value for ${JSON.stringify(key.slice(0, 100))} is ${valueBytes} bytes as JSON; ` +
        `at most ${STORE_LIMITS.valueBytes} (64 KB) are allowed`,
    );
  }
}

/** What a function's keys use now. */
export interface StoreUsage {
  keys: number;
  bytes: number;
}

/**
 * Why writing an entry of `entryBytes` (replacing one of `replacedBytes`; undefined
 * for a new key) would take a function past its total or key quota; undefined if not.
 */
export function quotaProblem(
  usage: StoreUsage,
  entryBytes: number,
  replacedBytes: number | undefined,
): string | undefined {
  const keys = usage.keys + (replacedBytes === undefined ? 1 : 0);
  const bytes = usage.bytes - (replacedBytes ?? 0) + entryBytes;
  if (keys > STORE_LIMITS.keys) {
    return `store is full: a function may keep at most ${STORE_LIMITS.keys} keys (delete some, or set a ttl)`;
  }
  if (bytes > STORE_LIMITS.totalBytes) {
    return (
      `store is full: a function may keep at most ${STORE_LIMITS.totalBytes / 1048576} MB ` +
      `of keys and values (${usage.bytes} bytes used; delete some, or set a ttl)`
    );
  }
  return undefined;
}
