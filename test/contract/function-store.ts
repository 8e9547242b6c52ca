import { afterEach, describe, expect, test } from "bun:test";
import type { FunctionStore } from "../../src/functions/store.ts";
import { STORE_LIMITS, StoreQuotaError } from "../../src/functions/store-quota.ts";

/**
 * The FunctionStore contract (SPEC 7, `ctx.store`): JSON text by key with an optional
 * TTL, each function of each connection (an owner) with keys and quotas of its own. A backend's test calls `functionStoreContract` with a
 * fixture on an injected clock; `reopen` opens the same storage again (a restart).
 */
export interface FunctionStoreFixture {
  store: FunctionStore;
  reopen(): Promise<FunctionStore>;
  cleanup(): Promise<void>;
}

const A = "con_a/fn_1";
const B = "con_b/fn_1";

export function functionStoreContract(
  name: string,
  make: (now: () => number) => Promise<FunctionStoreFixture>,
): void {
  describe(`FunctionStore contract: ${name}`, () => {
    let fx: FunctionStoreFixture | undefined;
    let clock = 1_700_000_000_000;
    const open = async () => {
      clock = 1_700_000_000_000;
      fx = await make(() => clock);
      return fx.store;
    };
    afterEach(async () => {
      await fx?.cleanup();
      fx = undefined;
    });

    test("set, get, overwrite and delete JSON text, byte for byte", async () => {
      const store = await open();
      expect(await store.get(A, "missing")).toBeUndefined();
      const text = '{"a":[1,2,{"ü":"\\u0000"}],"__proto__":{"x":1}}';
      await store.set(A, "k", text, null);
      expect(await store.get(A, "k")).toBe(text);
      await store.set(A, "k", "2", null);
      expect(await store.get(A, "k")).toBe("2");
      await store.del(A, "k");
      expect(await store.get(A, "k")).toBeUndefined();
      await store.del(A, "never-set");
    });

    test("ttl: -2 missing, -1 without expiry, else whole seconds left; expired keys are gone", async () => {
      const store = await open();
      expect(await store.ttl(A, "k")).toBe(-2);
      await store.set(A, "forever", "1", null);
      expect(await store.ttl(A, "forever")).toBe(-1);
      await store.set(A, "k", '"v"', 10);
      expect(await store.ttl(A, "k")).toBe(10);
      clock += 2500;
      expect(await store.ttl(A, "k")).toBe(8);
      clock += 7500;
      expect(await store.get(A, "k")).toBeUndefined();
      expect(await store.ttl(A, "k")).toBe(-2);
      // Setting again without a TTL clears the old expiry.
      await store.set(A, "k", '"w"', 5);
      await store.set(A, "k", '"w"', null);
      clock += 10_000;
      expect(await store.get(A, "k")).toBe('"w"');
    });

    test("each owner has keys of its own", async () => {
      const store = await open();
      await store.set(A, "k", '"a"', null);
      expect(await store.get(B, "k")).toBeUndefined();
      await store.set(B, "k", '"b"', null);
      await store.del(B, "k");
      expect(await store.get(A, "k")).toBe('"a"');
    });

    test("an owner past its quota is refused with StoreQuotaError; others are not", async () => {
      const store = await open();
      const value = JSON.stringify("x".repeat(STORE_LIMITS.valueBytes - 100));
      const fit = Math.floor(STORE_LIMITS.totalBytes / (value.length + 10));
      for (let i = 0; i < fit; i++) await store.set(A, `k${i}`, value, null);
      await expect(store.set(A, "one-more", value, null)).rejects.toBeInstanceOf(StoreQuotaError);
      // Replacing a key in place still fits; another owner is untouched.
      await store.set(A, "k0", '"small"', null);
      await store.set(B, "k", value, null);
      expect(await store.get(B, "k")).toBe(value);
    });

    test("values survive a restart", async () => {
      const store = await open();
      await store.set(A, "kept", '{"n":1}', 3600);
      const reopened = await fx!.reopen();
      expect(await reopened.get(A, "kept")).toBe('{"n":1}');
      expect(await reopened.ttl(A, "kept")).toBe(3600);
    });
  });
}
