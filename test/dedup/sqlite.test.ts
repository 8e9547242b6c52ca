import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteDedupStore } from "../../src/dedup/sqlite.ts";
import { openStateDb } from "../../src/state/sqlite.ts";
import { waitFor } from "../support/wait.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function open(persistIntervalMs = 10_000) {
  const dir = mkdtempSync(join(tmpdir(), "sluice-dedup-"));
  dirs.push(dir);
  const db = openStateDb(dir);
  const store = new SqliteDedupStore(db, { windowSeconds: 3600, persistIntervalMs });
  return { dir, db, store };
}

const ids = (n: number, prefix = "m") =>
  Array.from({ length: n }, (_, i) => `${prefix}-${(i * 7919) % n}-${i}`);
const keys = (messageIds: string[], sourceId = "web") =>
  messageIds.map((messageId) => ({ sourceId, messageId }));

test("keys are seen before, while and after the timer writes them in chunks", async () => {
  const { db, store } = open(5);
  const stored = ids(3000);
  store.remember(keys(stored), { segment: 1, offset: 100 });
  expect((await store.seen("web", stored)).size).toBe(3000);
  // Poll while the chunked write runs: never a moment where a key is forgotten.
  const deadline = Date.now() + 5000;
  while (store.checkpoint() === undefined && Date.now() < deadline) {
    expect((await store.seen("web", stored.slice(0, 50))).size).toBe(50);
    await Bun.sleep(1);
  }
  expect(store.checkpoint()).toEqual({ segment: 1, offset: 100 });
  const rows = db.query("SELECT count(*) AS n FROM dedup_keys").get() as { n: number };
  expect(rows.n).toBe(3000);
  expect((await store.seen("web", stored)).size).toBe(3000);
  await store.close();
  db.close();
});

test("a bulk lookup finds exactly the stored ids among many, per source", async () => {
  const { db, store } = open();
  const stored = ids(300, "s");
  store.remember(keys(stored), { segment: 1, offset: 10 });
  store.persist();
  const fresh = ids(301, "f");
  // 601 ids: several full statements and a short last slice padded with repeats.
  const asked = [...fresh.slice(0, 150), ...stored, ...fresh.slice(150)];
  const found = await store.seen("web", asked);
  expect([...found].sort()).toEqual([...stored].sort());
  expect((await store.seen("other", asked)).size).toBe(0);
  await store.close();
  db.close();
});

test("the checkpoint moves even when a replayed stretch of log held no keys", async () => {
  const { db, store } = open(5);
  store.remember([], { segment: 2, offset: 0 });
  await waitFor(() => store.checkpoint() !== undefined, { intervalMs: 5, timeoutMs: 5000 });
  expect(store.checkpoint()).toEqual({ segment: 2, offset: 0 });
  await store.close();
  db.close();
});

test("close writes what is pending, and a reopened store still knows every key", async () => {
  const { dir, db, store } = open();
  const first = ids(700, "a");
  const second = ids(50, "b");
  store.remember(keys(first), { segment: 1, offset: 1 });
  store.remember(keys(second), { segment: 1, offset: 2 });
  await store.close();
  db.close();
  const db2 = openStateDb(dir);
  const reopened = new SqliteDedupStore(db2, { windowSeconds: 3600 });
  expect(reopened.checkpoint()).toEqual({ segment: 1, offset: 2 });
  expect((await reopened.seen("web", [...first, ...second, "new"])).size).toBe(750);
  await reopened.close();
  db2.close();
});

test("expired keys are pruned step by step, without a full-table delete; fresh ones stay", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-dedup-"));
  dirs.push(dir);
  const db = openStateDb(dir);
  let now = 1_000_000;
  const store = new SqliteDedupStore(db, {
    windowSeconds: 60,
    persistIntervalMs: 1_000_000,
    now: () => now,
  });
  const old = ids(50, "old");
  store.remember(keys(old), { segment: 1, offset: 10 });
  store.remember(keys(ids(5, "other-old"), "app"), { segment: 1, offset: 20 });
  now += 50_000;
  const fresh = ids(20, "fresh");
  store.remember(keys(fresh), { segment: 1, offset: 30 });
  store.persist();
  now += 20_000; // the first keys are now 70 s old, past the 60 s window
  const count = () => (db.query("SELECT count(*) AS n FROM dedup_keys").get() as { n: number }).n;
  expect(count()).toBe(75);
  let deleted = 0;
  for (let step = 0; step < 20; step++) deleted += store.pruneStep(7);
  expect(deleted).toBe(55);
  expect(count()).toBe(20);
  expect((await store.seen("web", fresh)).size).toBe(20);
  await store.close();
  db.close();
});
