import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { IndexWriterThread } from "../../src/admin/search/index-thread.ts";
import { SearchIndexer } from "../../src/admin/search/indexer.ts";
import { eventLogSource } from "../../src/admin/search/log-source.ts";
import { EventSearch } from "../../src/admin/search/search.ts";
import { IndexShards } from "../../src/admin/search/shards.ts";
import { StoredTimes } from "../../src/admin/search/stored-times.ts";
import { FileEventLog } from "../../src/log/file/file-log.ts";
import { waitFor } from "../support/wait.ts";

const logger = pino({ level: "silent" });
const dirs: string[] = [];
const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A real file log with `n` events (user u<i % 10>, event E<i % 3>), and an index over it. */
async function setup(n: number, opts: { shardEvents?: number; segmentBytes?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "sluice-index-"));
  dirs.push(dir);
  const log = await FileEventLog.open({
    dir: join(dir, "log"),
    segmentBytes: opts.segmentBytes ?? 64 * 1024 * 1024,
    logger,
  });
  closers.push(() => log.close());
  const encoder = new TextEncoder();
  const batch: Uint8Array[] = [];
  const t0 = Date.parse("2024-05-01T00:00:00Z");
  for (let i = 0; i < n; i++) {
    const event = {
      type: i % 5 === 0 ? "page" : "track",
      event: `E${i % 3}`,
      userId: `u${i % 10}`,
      anonymousId: `a${i}`,
      messageId: `m${i}`,
      sourceId: i % 2 === 0 ? "web" : "app",
      keyId: "k",
      receivedAt: new Date(t0 + i * 1000).toISOString(),
    };
    batch.push(encoder.encode(JSON.stringify(event)));
    if (batch.length === 500) await log.append(batch.splice(0));
  }
  if (batch.length > 0) await log.append(batch.splice(0));
  const shards = new IndexShards(join(dir, "index"), opts.shardEvents ?? 1_000_000);
  closers.push(() => shards.close());
  const source = eventLogSource(log);
  const indexer = new SearchIndexer(shards, source, { logger, batch: 700 });
  closers.push(() => indexer.stop());
  return { dir, log, shards, source, indexer, t0 };
}

test("the index finds what a full scan finds, across shards, with small scan chunks", async () => {
  const { shards, source, indexer, dir } = await setup(3000, { shardEvents: 400 });
  await indexer.catchUp();
  expect(shards.count()).toBe(3000);
  expect(readdirSync(join(dir, "index")).filter((f) => f.endsWith(".db"))).toHaveLength(8);
  const search = new EventSearch(shards, source, { chunk: 50, maxScan: 300 });
  const all = async (query: Omit<Parameters<EventSearch["search"]>[0], "limit">) => {
    const ids: string[] = [];
    let before: number | undefined;
    for (let pages = 0; pages < 500; pages++) {
      const page = await search.search({ ...query, limit: 25, before });
      ids.push(...page.events.map((f) => f.event.messageId));
      if (page.before === null) return ids;
      before = page.before;
    }
    throw new Error("too many pages");
  };
  const expected = (pred: (i: number) => boolean) =>
    Array.from({ length: 3000 }, (_, i) => 2999 - i)
      .filter(pred)
      .map((i) => `m${i}`);
  expect(await all({ userId: "u3" })).toEqual(expected((i) => i % 10 === 3));
  expect(await all({ userId: "u3", event: "E0" })).toEqual(
    expected((i) => i % 10 === 3 && i % 3 === 0),
  );
  expect(await all({ source: "web", type: "page" })).toEqual(expected((i) => i % 10 === 0));
  expect(await all({ messageId: "m1234" })).toEqual(["m1234"]);
  expect(await all({ anonymousId: "a17", source: "web" })).toEqual([]);
  expect(await all({ anonymousId: "a17", source: "app" })).toEqual(["m17"]);
  expect((await search.find("web", "m2998"))?.event.userId).toBe("u8");
});

test("far behind the index, a search of the file log finds the newest events past it and pages on through the rest", async () => {
  const { shards, source, indexer, log } = await setup(100);
  await indexer.catchUp();
  const encoder = new TextEncoder();
  await log.append(
    Array.from({ length: 100 }, (_, k) =>
      encoder.encode(
        JSON.stringify({
          type: "track",
          event: "Late",
          userId: `u${(100 + k) % 10}`,
          messageId: `m${100 + k}`,
          sourceId: "web",
          receivedAt: new Date().toISOString(),
        }),
      ),
    ),
  );
  const search = new EventSearch(shards, source, { chunk: 20, maxScan: 100, maxTail: 30 });
  expect((await search.find("web", "m199"))?.seq).toBe(200);
  const first = await search.search({ limit: 1000 });
  expect(first.events.map((f) => f.seq)).toEqual(Array.from({ length: 30 }, (_, k) => 200 - k));
  expect(first.before).toBe(171);
  const ids: string[] = [];
  let before: number | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const page = await search.search({ userId: "u4", limit: 7, before });
    ids.push(...page.events.map((f) => f.event.messageId));
    if (page.before === null) break;
    before = page.before;
  }
  expect(ids).toEqual(Array.from({ length: 20 }, (_, k) => `m${194 - k * 10}`));
});

test("events past the index are found from the log, with the order they will have", async () => {
  const { shards, source, indexer, log, t0 } = await setup(1000);
  await indexer.catchUp();
  await log.append([
    new TextEncoder().encode(
      JSON.stringify({
        type: "track",
        event: "Late",
        userId: "u3",
        messageId: "late",
        sourceId: "web",
        receivedAt: new Date(t0 + 5_000_000).toISOString(),
      }),
    ),
  ]);
  const search = new EventSearch(shards, source);
  const first = await search.search({ userId: "u3", limit: 3 });
  expect(first.events.map((f) => f.event.messageId)).toEqual(["late", "m993", "m983"]);
  const rest = await search.search({ userId: "u3", limit: 200, before: first.before! });
  expect(rest.events[0]!.event.messageId).toBe("m973");
  await indexer.catchUp();
  const after = await search.search({ userId: "u3", limit: 3 });
  expect(after.events.map((f) => [f.event.messageId, f.seq])).toEqual(
    first.events.map((f) => [f.event.messageId, f.seq]),
  );
});

test("the index survives a restart and goes on where it stopped", async () => {
  const { dir, shards, source, log } = await setup(1500);
  const indexer = new SearchIndexer(shards, source, { logger, batch: 500 });
  await indexer.catchUp();
  shards.close();
  const again = new IndexShards(join(dir, "index"));
  closers.push(() => again.close());
  expect(again.progress().seq).toBe(1500);
  const more = [{ messageId: "x1", userId: "zed", sourceId: "web", type: "track", event: "Z" }];
  await log.append(more.map((e) => new TextEncoder().encode(JSON.stringify(e))));
  await new SearchIndexer(again, source, { logger }).catchUp();
  expect(again.count()).toBe(1501);
  expect(
    (await new EventSearch(again, source).search({ userId: "zed", limit: 5 })).events,
  ).toHaveLength(1);
});

test("a shard whose events retention deleted from the log is dropped whole", async () => {
  const { dir, shards, source, indexer, log } = await setup(2000, {
    shardEvents: 500,
    segmentBytes: 64 * 1024,
  });
  await indexer.catchUp();
  const segments = log.segments();
  expect(segments.length).toBeGreaterThan(3);
  for (const s of segments.slice(0, 2)) log.deleteSegment(s.segment);
  await indexer.dropExpired();
  const files = readdirSync(join(dir, "index")).filter((f) => f.endsWith(".db"));
  expect(files.length).toBeLessThan(4);
  const search = new EventSearch(shards, source);
  // Hits in a dropped or deleted part never reach the answer.
  expect((await search.search({ messageId: "m0", limit: 5 })).events).toEqual([]);
  expect((await search.search({ messageId: "m1999", limit: 5 })).events).toHaveLength(1);
});

/** The threads of this process in SCHED_IDLE (policy 5), from /proc. */
function idleThreads(): string[] {
  return readdirSync("/proc/self/task").filter((tid) => {
    try {
      return /^policy\s*:\s*5$/m.test(readFileSync(`/proc/self/task/${tid}/sched`, "utf8"));
    } catch {
      return false;
    }
  });
}

function threadName(tid: string): string {
  try {
    return readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim();
  } catch {
    return ""; // ended meanwhile
  }
}

test("the server's writer thread indexes in the idle class; a read-only view searches what it committed", async () => {
  const { dir, log } = await setup(900, { shardEvents: 400 });
  const before = idleThreads();
  const writer = await IndexWriterThread.start({
    logDir: join(dir, "log"),
    indexDir: join(dir, "writer-index"),
    log,
    logger,
    delayMs: 5,
    shardEvents: 400,
    batch: 300,
  });
  closers.push(() => writer.stop());
  expect(writer.priority).toBe("idle");
  // One new thread of this process runs in SCHED_IDLE: the writer; this one does not.
  // (Threads of servers that earlier test files ran in this process may still be going.)
  expect(idleThreads().filter((tid) => !before.includes(tid))).toHaveLength(1);
  expect(idleThreads()).not.toContain(String(process.pid));

  const view = new IndexShards(join(dir, "writer-index"), { readOnly: true });
  closers.push(() => view.close());
  // No records read past the index: whatever is found, the index found.
  const search = new EventSearch(view, eventLogSource(log), { maxTail: 0 });
  await waitFor(
    async () => (await search.search({ messageId: "m899", limit: 1 })).events.length === 1,
    {
      what: "the writer to index the log",
    },
  );
  view.refresh();
  expect(view.progress().seq).toBe(900);
  expect((await search.search({ messageId: "m0", limit: 1 })).events).toHaveLength(1);
  expect((await search.search({ userId: "u3", limit: 500 })).events).toHaveLength(90);
  // Stored before the writer started: when is not known.
  expect((await search.search({ messageId: "m0", limit: 1 })).events[0]!.storedAt).toBeNull();

  // An append the thread is told of (after it is durable) is indexed, in a new shard,
  // with the time it became durable.
  const late = { type: "track", event: "Late", userId: "lu", messageId: "late", sourceId: "web" };
  const appending = Date.now();
  await log.append(
    Array.from({ length: 300 }, (_, i) =>
      new TextEncoder().encode(JSON.stringify({ ...late, messageId: `late-${i}` })),
    ),
  );
  const appended = Date.now();
  const lates = await waitFor(
    async () => {
      const found = (await search.search({ userId: "lu", limit: 500 })).events;
      return found.length === 300 && found;
    },
    { what: "the appended events to be indexed" },
  );
  const stored = new Set(lates.map((f) => f.storedAt));
  expect(stored.size).toBe(1); // one append
  const [time] = stored;
  expect(time).toBeGreaterThanOrEqual(appending);
  expect(time).toBeLessThanOrEqual(appended);
  expect(readdirSync(join(dir, "writer-index")).filter((f) => f.endsWith(".db"))).toHaveLength(3);
  await writer.stop();
  // Its thread has ended, not only been asked to (a caller may remove the index next).
  // (The engine's GC helper threads it started live on, with its scheduling class.)
  const left = idleThreads().filter((tid) => !before.includes(tid));
  expect(left.map(threadName).filter((name) => name !== "HeapHelper" && name !== "")).toEqual([]);
  // A stopped writer has closed its shards: a new one goes on where it stopped.
  const reopened = new IndexShards(join(dir, "writer-index"), 400);
  closers.push(() => reopened.close());
  expect(reopened.progress().seq).toBe(1200);
});

test("on an empty log and index the writer thread starts at the first append, and times it", async () => {
  const { dir, log } = await setup(0);
  const before = idleThreads();
  const writer = await IndexWriterThread.start({
    logDir: join(dir, "log"),
    indexDir: join(dir, "writer-index"),
    log,
    logger,
    delayMs: 5,
  });
  closers.push(() => writer.stop());
  // Nothing to index: no thread yet.
  expect(writer.priority).toBeUndefined();
  expect(idleThreads().filter((tid) => !before.includes(tid))).toHaveLength(0);

  const view = new IndexShards(join(dir, "writer-index"), { readOnly: true });
  closers.push(() => view.close());
  const search = new EventSearch(view, eventLogSource(log), { maxTail: 0 });
  const appending = Date.now();
  const event = { type: "track", event: "First", userId: "fu", sourceId: "web" };
  await log.append(
    Array.from({ length: 20 }, (_, i) =>
      new TextEncoder().encode(JSON.stringify({ ...event, messageId: `first-${i}` })),
    ),
  );
  const appended = Date.now();
  const found = await waitFor(
    async () => {
      view.refresh();
      const events = (await search.search({ userId: "fu", limit: 50 })).events;
      return events.length === 20 && events;
    },
    { what: "the first append to be indexed" },
  );
  expect(writer.priority).toBe("idle");
  // The append that started the thread has its stored time.
  for (const f of found) {
    expect(f.storedAt).toBeGreaterThanOrEqual(appending);
    expect(f.storedAt).toBeLessThanOrEqual(appended);
  }
  await writer.stop();
});

test("a writer that never started stops at once", async () => {
  const { dir, log } = await setup(0);
  const writer = await IndexWriterThread.start({
    logDir: join(dir, "log"),
    indexDir: join(dir, "writer-index"),
    log,
    logger,
  });
  await writer.stop();
  expect(writer.priority).toBeUndefined();
});

test("a read-only view lets go of a shard the writer dropped, and picks up new ones", async () => {
  const { dir, shards, source, indexer, log } = await setup(1200, {
    shardEvents: 400,
    segmentBytes: 64 * 1024,
  });
  const view = new IndexShards(join(dir, "index"), { readOnly: true });
  closers.push(() => view.close());
  const search = new EventSearch(view, source, { maxTail: 0 });
  expect((await search.search({ messageId: "m0", limit: 1 })).events).toEqual([]); // nothing indexed yet
  await indexer.catchUp();
  expect((await search.search({ messageId: "m0", limit: 1 })).events).toHaveLength(1);
  expect((await search.search({ messageId: "m1199", limit: 1 })).events).toHaveLength(1);
  for (const s of log.segments().slice(0, 2)) log.deleteSegment(s.segment);
  await indexer.dropExpired();
  view.refresh();
  expect(view.count()).toBe(shards.count());
  expect(view.count()).toBeLessThan(1200);
  expect((await search.search({ messageId: "m1199", limit: 1 })).events).toHaveLength(1);
  expect(() => view.append([], "1:0")).toThrow("read-only");
});

test("a shard written before stored times were kept is searched all the same, with null", async () => {
  const { dir, shards, indexer, log } = await setup(300);
  await indexer.catchUp();
  shards.close();
  const indexDir = join(dir, "index");
  for (const file of readdirSync(indexDir).filter((f) => f.endsWith(".db"))) {
    const db = new Database(join(indexDir, file));
    db.exec("ALTER TABLE events DROP COLUMN stored");
    db.close();
  }
  const times = new StoredTimes(log.end());
  const unsubscribe = log.onAppend(() => times.add(log.end(), Date.now()));
  closers.push(unsubscribe);
  const view = new IndexShards(indexDir, { readOnly: true });
  closers.push(() => view.close());
  const search = new EventSearch(view, eventLogSource(log, times), { maxTail: 0 });
  const found = async (messageId: string) =>
    (await search.search({ messageId, limit: 1 })).events.map((f) => [
      f.event.messageId,
      f.storedAt,
    ]);
  expect(await found("m7")).toEqual([["m7", null]]);

  // A writer opening it adds the column: its new rows have their time, and the view
  // (opened before) reads it.
  const writer = new IndexShards(indexDir);
  closers.push(() => writer.close());
  const appending = Date.now();
  const fresh = { type: "track", event: "E", messageId: "fresh", sourceId: "web" };
  await log.append([new TextEncoder().encode(JSON.stringify(fresh))]);
  const appended = Date.now();
  await new SearchIndexer(writer, eventLogSource(log, times), { logger }).catchUp();
  const [[, time]] = (await found("fresh")) as [[string, number]];
  expect(time).toBeGreaterThanOrEqual(appending);
  expect(time).toBeLessThanOrEqual(appended);
  expect(await found("m7")).toEqual([["m7", null]]);
  expect(writer.count()).toBe(301);
});

/** Files under `dir` this process holds open (Linux: /proc/self/fd), deleted ones too. */
function openFilesUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${dir}/`)) open.push(target.slice(dir.length + 1));
    } catch {
      // closed between the listing and the read (the listing's own fd)
    }
  }
  return open.sort();
}

test.skipIf(!existsSync("/proc/self/fd"))(
  "a shard dropped, cleared or closed lets go of its files at once",
  () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-index-"));
    dirs.push(dir);
    const shards = new IndexShards(dir, 100);
    const rows = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({
        source: "web",
        type: "track",
        received: 1_700_000_000_000 + from + i,
        ref: `1:${from + i}`,
        stored: null,
        mh: BigInt(from + i),
        keys: [BigInt(from + i) * 7n],
      }));
    shards.append(rows(0, 250), "1:250");
    const first = "events-000000000001.db";
    expect(openFilesUnder(dir).filter((f) => f.startsWith(first))).toHaveLength(3);
    // A statement left unfinalized made SQLite's close a deferred one: a dropped shard's
    // files stayed open (deleted, their space not freed) until a collection, and the
    // late close then deleted `<name>-wal` by name, by then maybe a new shard's (after
    // `clear`, the index starts again at the same first name).
    shards.dropOldest();
    expect(openFilesUnder(dir).filter((f) => f.startsWith(first))).toEqual([]);
    shards.clear();
    expect(openFilesUnder(dir)).toEqual([]);
    shards.append(rows(0, 50), "1:50");
    shards.close();
    expect(openFilesUnder(dir)).toEqual([]);
    expect(readdirSync(dir)).toEqual([first]);
  },
);
