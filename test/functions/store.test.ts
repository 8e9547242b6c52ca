import type { Database } from "bun:sqlite";
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteFunctionStore } from "../../src/functions/store.ts";
import { openStateDb } from "../../src/state/sqlite.ts";

let dir: string;
let db: Database;
let now = 1_000_000;
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
  await store.set("a", '{"n":1}', 30);
  await store.set("forever", "1", null);
  expect(await store.get("a")).toBe('{"n":1}');
  expect(await store.ttl("a")).toBe(30);
  expect(await store.ttl("forever")).toBe(-1);
  expect(await store.ttl("missing")).toBe(-2);
  now += 29_500;
  expect(await store.ttl("a")).toBe(1);
  now += 500;
  expect(await store.get("a")).toBeUndefined();
  expect(await store.ttl("a")).toBe(-2);
  expect(store.prune()).toBe(1);
  await store.del("forever");
  expect(await store.get("forever")).toBeUndefined();
  store.close();
});

test("entries persist in the state database across a reopen", async () => {
  const store = new SqliteFunctionStore(db);
  await store.set("k", '"v"', 60);
  store.close();
  db.close();
  db = openStateDb(dir);
  const again = new SqliteFunctionStore(db);
  expect(await again.get("k")).toBe('"v"');
  again.close();
});
