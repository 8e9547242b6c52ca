import type { Database } from "bun:sqlite";
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteFunctionStore, storeOwner } from "../../src/functions/store.ts";
import { STORE_LIMITS, StoreQuotaError } from "../../src/functions/store-quota.ts";
import { openStateDb } from "../../src/state/sqlite.ts";

let dir: string;
let db: Database;
let now = 1_000_000;
const A = storeOwner("con_a", "fn");
const B = storeOwner("con_b", "fn");
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sluice-fnstore-"));
  db = openStateDb(dir);
  now = 1_000_000;
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

test("values expire after their ttl; ttl() is -2 when missing, -1 without expiry", async () => {
  const store = new SqliteFunctionStore(db, { now: () => now });
  await store.set(A, "a", '{"n":1}', 30);
  await store.set(A, "forever", "1", null);
  expect(await store.get(A, "a")).toBe('{"n":1}');
  expect(await store.ttl(A, "a")).toBe(30);
  expect(await store.ttl(A, "forever")).toBe(-1);
  expect(await store.ttl(A, "missing")).toBe(-2);
  now += 29_500;
  expect(await store.ttl(A, "a")).toBe(1);
  now += 500;
  expect(await store.get(A, "a")).toBeUndefined();
  expect(await store.ttl(A, "a")).toBe(-2);
  expect(store.prune()).toBe(1);
  await store.del(A, "forever");
  expect(await store.get(A, "forever")).toBeUndefined();
  store.close();
});

test("entries persist in the state database across a reopen", async () => {
  const store = new SqliteFunctionStore(db);
  await store.set(A, "k", '"v"', 60);
  store.close();
  db.close();
  db = openStateDb(dir);
  const again = new SqliteFunctionStore(db);
  expect(await again.get(A, "k")).toBe('"v"');
  again.close();
});

test("each owner (connection and function) has its own keys", async () => {
  const store = new SqliteFunctionStore(db);
  await store.set(A, "token", '"a-secret"', null);
  expect(await store.get(B, "token")).toBeUndefined();
  await store.set(B, "token", '"b"', null);
  await store.del(B, "token");
  expect(await store.get(A, "token")).toBe('"a-secret"');
  store.close();
});

test("a value over 64 KB and a key over 1 KB are refused with a StoreQuotaError", async () => {
  const store = new SqliteFunctionStore(db);
  const big = JSON.stringify("x".repeat(STORE_LIMITS.valueBytes));
  await expect(store.set(A, "big", big, null)).rejects.toThrow(
    /is 65538 bytes as JSON; at most 65536/,
  );
  await expect(store.set(A, "k".repeat(1025), "1", null)).rejects.toBeInstanceOf(StoreQuotaError);
  expect(await store.get(A, "big")).toBeUndefined();
  store.close();
});

test("an owner may keep 10,000 keys; the next is refused, a replaced or expired one frees room", async () => {
  const store = new SqliteFunctionStore(db, { now: () => now });
  for (let i = 0; i < STORE_LIMITS.keys - 1; i++) await store.set(A, `k${i}`, "1", null);
  await store.set(A, "short", "1", 10);
  await expect(store.set(A, "one-more", "1", null)).rejects.toThrow(/at most 10000 keys/);
  // Replacing a key adds none; another owner is not affected.
  await store.set(A, "k1", "2", null);
  await store.set(B, "one-more", "1", null);
  // Once "short" has expired (not yet pruned), its room is given back.
  now += 11_000;
  await store.set(A, "one-more", "1", null);
  expect(await store.get(A, "one-more")).toBe("1");
  await store.del(A, "k2");
  await store.set(A, "after-del", "1", null);
  store.close();
});

test("an owner may keep 10 MB of keys and values; usage survives a reopen", async () => {
  const store = new SqliteFunctionStore(db);
  const value = JSON.stringify("v".repeat(60_000));
  let i = 0;
  const error = await (async () => {
    for (;;) await store.set(A, `key${i++}`, value, null);
  })().catch((err) => err);
  expect(error).toBeInstanceOf(StoreQuotaError);
  expect(error.message).toContain("at most 10 MB");
  expect(i - 1).toBe(Math.floor(STORE_LIMITS.totalBytes / (value.length + 6)));
  store.close();
  db.close();
  db = openStateDb(dir);
  const again = new SqliteFunctionStore(db);
  await expect(again.set(A, "more", value, null)).rejects.toBeInstanceOf(StoreQuotaError);
  await again.set(A, "key1", '"smaller"', null);
  again.close();
});
