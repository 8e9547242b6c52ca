import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Placement } from "../../src/dedup/filter.ts";
import type { Geometry } from "../../src/dedup/geometry.ts";
import type { KeyHash } from "../../src/dedup/hash.ts";
import { SqliteDedupStore } from "../../src/dedup/sqlite.ts";
import { dedupContract } from "../contract/dedup.ts";
import { dedupStores } from "./stores.ts";

dedupContract("SQLite (dedup.db)", {
  async open(opts) {
    const dir = mkdtempSync(join(tmpdir(), "sluice-dedup-"));
    let store = await SqliteDedupStore.open(dir, opts);
    return {
      store,
      async reopen() {
        await store.close();
        store = await SqliteDedupStore.open(dir, opts);
        return store;
      },
      async cleanup() {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});

const { tempDir, open, close } = dedupStores(3600);

/**
 * What dedup.db holds, read through a connection of the test's own, in one read
 * transaction: the writer may drop a table between the listing and the counts.
 */
function onDisk(dir: string) {
  const db = new Database(join(dir, "dedup.db"), { readonly: true });
  try {
    db.exec("BEGIN");
    const tables = db
      .query<{ name: string }, []>(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name GLOB 'keys_*' ORDER BY name",
      )
      .all()
      .map((r) => r.name);
    let rows = 0;
    for (const t of tables) {
      rows += db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${t}`).get()!.n;
    }
    db.exec("COMMIT");
    return { tables, rows };
  } finally {
    db.close();
  }
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const keys = (messageIds: string[], sourceId = "web") =>
  messageIds.map((messageId) => ({ sourceId, messageId }));
const pos = (offset: number) => `1:${offset}`;

/** Every key hashes to one of four values: nearly every lookup meets a collision. */
const weakHash: KeyHash = {
  id: "weak-test-hash",
  of: (sourceId, messageId) => (sourceId.length * 31 + messageId.length) % 4,
};

test("hash collisions are told apart by the full key, in memory, on disk and after a restart", async () => {
  const dir = tempDir();
  const store = await open(dir, { hash: weakHash });
  const stored = ids("stored", 200);
  const others = ids("other", 200); // same lengths, so the very same four hashes
  store.remember(keys(stored), pos(1));
  store.remember(keys(["shared"], "app"), pos(2));
  expect([...(await store.seen("web", [...others, ...stored]))].sort()).toEqual(stored.sort());
  await store.flush();
  expect(onDisk(dir).rows).toBe(201);
  expect([...(await store.seen("web", [...others, ...stored]))].sort()).toEqual(stored.sort());
  expect((await store.seen("web", ["shared"])).size).toBe(0);
  expect((await store.seen("app", ["shared", "shares"])).size).toBe(1);
  await close(store);
  const again = await open(dir, { hash: weakHash });
  expect([...(await again.seen("web", [...others, ...stored]))].sort()).toEqual(stored.sort());
});

test("keys written under another hash are dropped, and the checkpoint with them (the log replays)", async () => {
  const dir = tempDir();
  const store = await open(dir, { hash: weakHash });
  store.remember(keys(["k"]), pos(9));
  await close(store);
  const again = await open(dir);
  expect(again.checkpoint()).toBeUndefined();
  expect((await again.seen("web", ["k"])).size).toBe(0);
  expect(onDisk(dir).tables).toEqual([]);
});

test("slices: keys stay exact across slice boundaries and a slice is dropped whole when it leaves the window", async () => {
  const dir = tempDir();
  let now = Date.UTC(2025, 0, 1);
  // 1 s slots, 10 slots per slice (a table per 10 s) and a 30 s window.
  const geometry: Geometry = { runMs: 1000, slotsPerSlice: 10 };
  const store = await open(dir, { windowSeconds: 30, geometry, now: () => now });
  const batches: string[][] = [];
  for (let second = 0; second < 40; second++) {
    const batch = ids(`t${second}`, 25);
    batches.push(batch);
    store.remember(keys(batch), pos(second));
    // Every key of the last 30 s is a duplicate, every older one is new again.
    const all = batches.flat();
    const expected = batches.slice(Math.max(0, second - 29)).flat();
    expect((await store.seen("web", all)).size).toBe(expected.length);
    if (second % 7 === 0) await store.flush();
    now += 1000;
  }
  await store.flush();
  // Drive the housekeeping timer (expiry) with the clock, then wait for the writer.
  const first = Math.floor(Date.UTC(2025, 0, 1) / 1000 / 10);
  const deadline = Date.now() + 5000;
  while (onDisk(dir).tables.includes(`keys_${first}`) && Date.now() < deadline) {
    await Bun.sleep(20);
  }
  // Slice 0 (seconds 0-9) is gone whole; slices 1-3 remain: no key was deleted one by one.
  expect(onDisk(dir)).toEqual({
    tables: [1, 2, 3].map((i) => `keys_${first + i}`),
    rows: 30 * 25,
  });
  // Its runs' hash blobs went with it.
  const db = new Database(join(dir, "dedup.db"), { readonly: true });
  try {
    const blobs = db
      .query<{ name: string }, []>(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name GLOB 'hashes_*' ORDER BY name",
      )
      .all()
      .map((r) => r.name);
    expect(blobs).toEqual([1, 2, 3].map((i) => `hashes_${first + i}`));
  } finally {
    db.close();
  }
  // At 40 s, the keys of seconds 11-39 are inside the window.
  expect((await store.seen("web", batches.flat())).size).toBe(29 * 25);
});

test("the filter grows with the window and every key is still found", async () => {
  const dir = tempDir();
  const store = await open(dir);
  const all: string[] = [];
  for (let b = 0; b < 120; b++) {
    const batch = Array.from({ length: 500 }, () => crypto.randomUUID());
    all.push(...batch);
    expect((await store.seen("web", batch)).size).toBe(0);
    store.remember(keys(batch), pos(b));
    // Let the timer and the writer run, as between requests.
    await new Promise((r) => setImmediate(r));
  }
  expect((await store.seen("web", all)).size).toBe(60_000);
  await store.flush();
  expect((await store.seen("web", all)).size).toBe(60_000);
  expect(store.stats().keys).toBe(60_000);
  // Grown from 128 KB (64 segments of 2 KB), to a few bytes a key.
  expect(store.stats().memoryBytes).toBeGreaterThan(128 * 1024);
  await close(store);
  const again = await open(dir);
  expect((await again.seen("web", all)).size).toBe(60_000);
  const fresh = Array.from({ length: 20_000 }, () => crypto.randomUUID());
  expect((await again.seen("web", fresh)).size).toBe(0);
  expect(again.stats().memoryBytes / 60_000).toBeLessThan(12);
}, 60_000);

test("writes happen off the caller's thread: recording keys does not touch dedup.db", async () => {
  const dir = tempDir();
  const store = await open(dir);
  store.remember(keys(ids("x", 1000)), pos(1));
  // Nothing is on disk until the writer has its turn...
  expect(onDisk(dir).rows).toBe(0);
  await store.flush();
  // ...and then all of it, with the checkpoint.
  expect(onDisk(dir).rows).toBe(1000);
  expect(store.checkpoint()).toEqual(pos(1));
});

test("a write that fails is reported and retried: unhealthy meanwhile, nothing lost", async () => {
  const dir = tempDir();
  const errors: string[] = [];
  const store = await open(dir, { onError: (err) => errors.push(err.message) });
  store.remember(keys(ids("before", 10)), pos(1));
  await store.flush();
  // Another process holds dedup.db's write lock past the writer's busy timeout (10 s).
  const other = new Database(join(dir, "dedup.db"));
  // The writer may be inside a transaction of its own (a filter copy): wait for it.
  other.exec("PRAGMA busy_timeout = 10000");
  other.exec("BEGIN EXCLUSIVE");
  try {
    store.remember(keys(ids("during", 10)), pos(2));
    const flushed = store.flush();
    const deadline = Date.now() + 30_000;
    while (store.healthy() && Date.now() < deadline) await Bun.sleep(50);
    expect(store.healthy()).toBe(false);
    expect(errors.join("\n")).toMatch(/locked|busy/i);
    // The keys are still answered from memory, and the checkpoint has not moved.
    expect((await store.seen("web", ids("during", 10))).size).toBe(10);
    expect(store.checkpoint()).toEqual(pos(1));
    other.exec("ROLLBACK");
    await flushed;
  } finally {
    other.close();
  }
  expect(store.healthy()).toBe(true);
  expect(store.checkpoint()).toEqual(pos(2));
  expect(onDisk(dir).rows).toBe(20);
}, 60_000);

test("a restart inside the slot of the last run: keys written after it are found after a crash", async () => {
  // The clock stands still: every store below lives in the same 2.75 s slot.
  const now = Date.UTC(2025, 0, 1, 12);
  const opts = { windowSeconds: 86_400, now: () => now, snapshotMinKeys: 1e9 };
  const dir = tempDir();
  const first = await open(dir, opts);
  first.remember(keys(ids("before", 500)), pos(1));
  // A clean stop: every filter segment is copied to disk, covering the last run's slot.
  await close(first);
  const second = await open(dir, opts);
  second.remember(keys(ids("after", 500)), pos(2));
  await second.flush();
  expect(second.checkpoint()).toEqual(pos(2));
  // `second` "crashes" now (no copy of the filter since): a new store starts on its files.
  const third = await open(dir, opts);
  expect(third.checkpoint()).toEqual(pos(2));
  // Both are at or before the checkpoint, so start-up replays neither: they must be there.
  expect((await third.seen("web", ids("before", 500))).size).toBe(500);
  expect((await third.seen("web", ids("after", 500))).size).toBe(500);
  // The second store's keys went to a run of their own, after the one the copies cover.
  const db = new Database(join(dir, "dedup.db"), { readonly: true });
  try {
    const runs = db.query<{ keys: number }, []>("SELECT keys FROM runs ORDER BY slot").all();
    expect(runs.map((r) => r.keys)).toEqual([500, 500]);
  } finally {
    db.close();
  }
});

test("a run with no keys (all replayed from outside the window) is not taken as covered", async () => {
  const now = Date.UTC(2025, 0, 1, 12);
  const opts = { windowSeconds: 86_400, now: () => now, snapshotMinKeys: 1e9 };
  const dir = tempDir();
  const first = await open(dir, opts);
  first.remember(keys(ids("before", 100)), pos(1));
  await first.flush();
  // A replayed tail whose keys all left the window: a run (the next slot) with no key.
  const old = now - 2 * 86_400_000;
  first.remember(
    ids("expired", 10).map((messageId) => ({ sourceId: "web", messageId, at: old })),
    pos(2),
  );
  await close(first);
  const second = await open(dir, opts);
  second.remember(keys(ids("after", 500)), pos(3));
  await second.flush();
  // `second` "crashes": its keys, up to the checkpoint, must be found without a replay.
  const third = await open(dir, opts);
  expect(third.checkpoint()).toEqual(pos(3));
  expect((await third.seen("web", ids("after", 500))).size).toBe(500);
  expect((await third.seen("web", ids("expired", 10))).size).toBe(0);
});

test("after a crash, runs no filter copy covers are re-read from their hash blobs, or from their rows where a run has none", async () => {
  let now = Date.UTC(2025, 0, 1, 12);
  const opts = { windowSeconds: 86_400, now: () => now, snapshotMinKeys: 1e9 };
  const dir = tempDir();
  const first = await open(dir, opts);
  first.remember(keys(ids("covered", 300)), pos(1));
  // A clean stop: the filter copies cover this run.
  await close(first);
  const second = await open(dir, opts);
  second.remember(keys(ids("blob", 400)), pos(2));
  now += 6_000; // a later slot (2.75 s for a 24 h window): a second run
  second.remember(keys(ids("rows", 400)), pos(3));
  await second.flush();
  // `second` "crashes" now. Each run's blob holds its rows' hashes in order; the last
  // run loses its blob, as a run written before there were blobs has none.
  const db = new Database(join(dir, "dedup.db"));
  try {
    const runs = db
      .query<{ slot: number; slice: number }, []>("SELECT slot, slice FROM runs ORDER BY slot")
      .all();
    expect(runs).toHaveLength(3);
    for (const { slot, slice } of runs) {
      const blob = db
        .query<{ h: Uint8Array }, [number]>(`SELECT h FROM hashes_${slice} WHERE slot = ?`)
        .get(slot)!.h;
      const rows = db
        .query<{ h: number }, [number]>(`SELECT h FROM keys_${slice} WHERE slot = ? ORDER BY h`)
        .all(slot)
        .map((r) => r.h);
      expect([...new Float64Array(blob.slice().buffer)]).toEqual(rows);
    }
    const last = runs.at(-1)!;
    db.query(`DELETE FROM hashes_${last.slice} WHERE slot = ?`).run(last.slot);
  } finally {
    db.close();
  }
  const third = await open(dir, opts);
  expect(third.checkpoint()).toEqual(pos(3));
  for (const prefix of ["covered", "blob", "rows"]) {
    const n = prefix === "covered" ? 300 : 400;
    expect((await third.seen("web", ids(prefix, n))).size).toBe(n);
  }
  expect((await third.seen("web", ids("never", 400))).size).toBe(0);
});

test("a clean stop during a resize keeps the keys the writer's refill put in its stash", async () => {
  // 28 hashes that share both buckets of a 64-bucket segment (16 places), so 12 of them
  // are stashed (few enough that a start loads the copy as it is). Recorded in reverse,
  // other keys are stashed than when the writer refills a table from disk (by hash).
  const hi = 12_345;
  const placement = new Placement();
  const crafted: number[] = [];
  for (let lo = 1; crafted.length < 28; lo++) {
    const h = hi * 2 ** 21 + lo;
    placement.of(h);
    if (placement.x2 >>> 26 === 7 && placement.fp === lo) crafted.push(h);
  }
  const byId = new Map(crafted.map((h, i) => [`c${i}`, h]));
  const hash: KeyHash = { id: "crafted-test-hash", of: (_s, id) => byId.get(id) ?? 0 };
  const all = [...byId.keys()];
  const dir = tempDir();
  const opts = { windowSeconds: 3600, hash };
  const first = await open(dir, opts);
  first.remember(keys([...all].reverse()), pos(1));
  await close(first);
  // The next store loads the copy with its stash; its first tick resizes the segment
  // (a stash makes it due), and the writer refills it from the run on disk.
  const second = await open(dir, opts);
  const base = second.stats().memoryBytes;
  const deadline = Date.now() + 10_000;
  while (second.stats().memoryBytes <= base && Date.now() < deadline) await Bun.sleep(1);
  // Stopped while the new table is being filled, before this thread took it over: the
  // copy must hold the writer's stash too.
  expect(second.stats().memoryBytes).toBeGreaterThan(base);
  await close(second);
  const third = await open(dir, opts);
  expect((await third.seen("web", all)).size).toBe(28);
});

test("keys on disk are exact to the millisecond at the window's end, across a slice boundary and a restart", async () => {
  // 1 s slots, 10 per slice, a 30 s window; keys seen at the last millisecond of a slot
  // (the latest a slot's tag allows) on both sides of a slice boundary.
  const geometry: Geometry = { runMs: 1000, slotsPerSlice: 10 };
  const sliceStart = Math.floor(Date.UTC(2025, 0, 1) / 10_000) * 10_000;
  let now = sliceStart + 8_999;
  const opts = { windowSeconds: 30, geometry, now: () => now };
  const dir = tempDir();
  const store = await open(dir, opts);
  store.remember(keys(["last-of-slot-8"]), pos(1));
  now = sliceStart + 9_999;
  store.remember(keys(["last-of-slice"]), pos(2));
  now = sliceStart + 10_000;
  store.remember(keys(["first-of-next-slice"]), pos(3));
  await store.flush();
  expect(onDisk(dir)).toEqual({
    tables: [`keys_${sliceStart / 10_000}`, `keys_${sliceStart / 10_000 + 1}`],
    rows: 3,
  });
  // After a restart the filter comes from its copies on disk, the keys from their runs.
  await close(store);
  const again = await open(dir, opts);
  const all = ["last-of-slot-8", "last-of-slice", "first-of-next-slice", "never"];
  const seenAt = async (ms: number) => {
    now = ms;
    return [...(await again.seen("web", all))].sort();
  };
  expect(await seenAt(sliceStart + 38_998)).toEqual(all.slice(0, 3).sort());
  expect(await seenAt(sliceStart + 38_999)).toEqual(["first-of-next-slice", "last-of-slice"]);
  expect(await seenAt(sliceStart + 39_998)).toEqual(["first-of-next-slice", "last-of-slice"]);
  expect(await seenAt(sliceStart + 39_999)).toEqual(["first-of-next-slice"]);
  expect(await seenAt(sliceStart + 40_000)).toEqual([]);
});

/** Files under `dir` this process still holds open (Linux: /proc/self/fd). */
function openFilesUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${dir}/`)) open.push(target);
    } catch {
      // closed between the listing and the read (this very listing's own fd)
    }
  }
  return open.sort();
}

test.skipIf(!existsSync("/proc/self/fd"))(
  "close resolves once the writer thread is done with the data dir: no file of it left open, and removing the dir leaves nothing",
  async () => {
    const dir = tempDir();
    const store = await open(dir);
    // A run written (the writer prepares its inserts), then keys that only close writes.
    store.remember(keys(ids("a", 2000)), pos(1));
    await store.flush();
    store.remember(keys(ids("b", 2000)), pos(2));
    expect(openFilesUnder(dir).length).toBeGreaterThan(0);
    await close(store);
    // A connection the writer left open (a statement never finalized keeps SQLite's
    // connection alive until the thread is torn down) later checkpointed and deleted
    // dedup.db-wal while the test removed the dir: the removal stopped half way and the
    // dir stayed behind (leftover sluice-dedup-crash-* dirs after `npm test`).
    expect(openFilesUnder(dir)).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(["dedup-filter", "dedup.db"]);
    rmSync(dir, { recursive: true, force: true });
    expect(existsSync(dir)).toBe(false);
  },
);
