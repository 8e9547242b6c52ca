import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { SEGMENTS } from "../../src/dedup/filter.ts";
import { filterDir, HEADER_BYTES, readFilterCopy } from "../../src/dedup/filter-file.ts";
import { dedupStores } from "./stores.ts";

const { tempDir, open, close } = dedupStores(86_400, "sluice-dedup-file-");

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const keys = (messageIds: string[]) =>
  messageIds.map((messageId) => ({ sourceId: "web", messageId }));
const pos = (offset: number) => `1:${offset}`;
const segmentFile = (dir: string, seg: number) => join(filterDir(dir), `segment-${seg}`);

test("a clean stop writes one file per filter segment, and the next start loads them, re-reading nothing", async () => {
  const dir = tempDir();
  const first = await open(dir);
  first.remember(keys(ids("a", 5000)), pos(1));
  await close(first);
  expect(readdirSync(filterDir(dir)).sort()).toEqual(
    Array.from({ length: SEGMENTS }, (_, s) => `segment-${s}`).sort(),
  );
  const second = await open(dir);
  expect(second.opened).toMatchObject({ reread: 0, fromTable: 0, rejected: [] });
  expect((await second.seen("web", ids("a", 5000))).size).toBe(5000);
  expect((await second.seen("web", ids("new", 5000))).size).toBe(0);
});

test("a torn, corrupt, misplaced, foreign or stale filter file is not trusted: the segment falls back to the keys on disk", async () => {
  let now = Date.UTC(2025, 0, 1, 12);
  const opts = { now: () => now, snapshotMinKeys: 1e9 };
  const dir = tempDir();
  const first = await open(dir, opts);
  first.remember(keys(ids("old", 4000)), pos(1));
  await close(first);
  // The copies as they were after the first run: stale once more keys are written.
  const stale = tempDir();
  cpSync(filterDir(dir), stale, { recursive: true });
  now += 6_000;
  const second = await open(dir, opts);
  second.remember(keys(ids("new", 4000)), pos(2));
  await close(second);
  // A store of its own: its files are of another generation.
  const other = tempDir();
  const foreign = await open(other, opts);
  foreign.remember(keys(ids("other", 100)), pos(1));
  await close(foreign);

  truncateSync(segmentFile(dir, 0), HEADER_BYTES + 100); // torn
  const corrupt = readFileSync(segmentFile(dir, 1));
  corrupt[HEADER_BYTES + 7]! ^= 0x40; // one bit of an entry
  writeFileSync(segmentFile(dir, 1), corrupt);
  cpSync(segmentFile(dir, 3), segmentFile(dir, 2)); // another segment's copy
  cpSync(segmentFile(other, 4), segmentFile(dir, 4)); // another store's copy
  writeFileSync(segmentFile(dir, 5), "not a filter copy at all ".repeat(10));
  for (let s = 10; s < SEGMENTS; s++) cpSync(join(stale, `segment-${s}`), segmentFile(dir, s));
  rmSync(segmentFile(dir, 6));

  const third = await open(dir, opts);
  expect(third.opened.rejected).toEqual([
    "segment 0: torn or of another segment",
    "segment 1: checksum mismatch",
    "segment 2: torn or of another segment",
    "segment 4: of another generation",
    "segment 5: not a filter copy",
  ]);
  // The stale copies are sound for the runs they cover; the keys after them are re-read.
  expect(third.opened.reread).toBeGreaterThan(0);
  expect((await third.seen("web", ids("old", 4000))).size).toBe(4000);
  expect((await third.seen("web", ids("new", 4000))).size).toBe(4000);
  expect((await third.seen("web", ids("never", 4000))).size).toBe(0);
  // The writer replaced what it could not use.
  await close(third);
  const fourth = await open(dir, opts);
  expect(fourth.opened).toMatchObject({ reread: 0, rejected: [] });
  expect((await fourth.seen("web", [...ids("old", 4000), ...ids("new", 4000)])).size).toBe(8000);
});

test("keys discarded (another hash) make the old filter files another generation's", async () => {
  const dir = tempDir();
  const first = await open(dir);
  first.remember(keys(ids("a", 1000)), pos(1));
  await close(first);
  const weak = { id: "another-hash", of: (_s: string, id: string) => id.length };
  const second = await open(dir, { hash: weak });
  expect(second.opened.rejected).toHaveLength(SEGMENTS);
  expect((await second.seen("web", ids("a", 1000))).size).toBe(0);
  expect(second.checkpoint()).toBeUndefined();
});

test("a store whose filter copies are in dedup.db (before the files) opens from them, then moves them to files", async () => {
  const dir = tempDir();
  const first = await open(dir);
  first.remember(keys(ids("a", 3000)), pos(1));
  await close(first);
  // Put the copies back where stores before the files kept them, as they kept them.
  const db = new Database(join(dir, "dedup.db"));
  try {
    const generation = Number(
      db
        .query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'filterGeneration'")
        .get()!.value,
    );
    const insert = db.query(
      "INSERT INTO filter (seg, buckets, covered, entries, stash) VALUES (?, ?, ?, ?, ?)",
    );
    for (let s = 0; s < SEGMENTS; s++) {
      const copy = readFilterCopy(filterDir(dir), s, generation);
      if (!copy || !("table" in copy)) throw new Error(`segment ${s}: no copy`);
      const stash = copy.stash.length ? new Uint8Array(Float64Array.from(copy.stash).buffer) : null;
      insert.run(s, copy.buckets, copy.covered, new Uint8Array(copy.table.buffer).slice(), stash);
    }
    db.exec("DELETE FROM meta WHERE key = 'filterGeneration'");
  } finally {
    db.close();
  }
  rmSync(filterDir(dir), { recursive: true });
  const second = await open(dir);
  expect(second.opened).toMatchObject({ reread: 0, fromTable: SEGMENTS, rejected: [] });
  expect((await second.seen("web", ids("a", 3000))).size).toBe(3000);
  expect((await second.seen("web", ids("b", 3000))).size).toBe(0);
  await close(second);
  expect(existsSync(segmentFile(dir, SEGMENTS - 1))).toBe(true);
  const check = new Database(join(dir, "dedup.db"), { readonly: true });
  try {
    expect(check.query<{ n: number }, []>("SELECT count(*) AS n FROM filter").get()!.n).toBe(0);
  } finally {
    check.close();
  }
  const third = await open(dir);
  expect(third.opened).toMatchObject({ reread: 0, fromTable: 0, rejected: [] });
  expect((await third.seen("web", ids("a", 3000))).size).toBe(3000);
});

test("a copy that cannot be read (here a folder by its name) is rejected like a torn one, not thrown (the open goes on with the fallback)", () => {
  const dir = tempDir();
  mkdirSync(segmentFile(dir, 3), { recursive: true });
  const copy = readFilterCopy(filterDir(dir), 3, 1);
  expect(copy).toEqual({ rejected: expect.stringMatching(/^unreadable: /) });
});
