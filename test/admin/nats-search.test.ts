import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { IndexWriterThread, type NatsLog } from "../../src/admin/search/index-thread.ts";
import { SearchIndexer } from "../../src/admin/search/indexer.ts";
import { indexRow } from "../../src/admin/search/keys.ts";
import { NatsSearchSource } from "../../src/admin/search/nats-source.ts";
import { EventSearch } from "../../src/admin/search/search.ts";
import { IndexShards } from "../../src/admin/search/shards.ts";
import { errorHandler } from "../../src/http/errors.ts";
import type { NatsLogStream } from "../../src/log/nats/nats-log.ts";
import { StorageUnavailableError } from "../../src/storage/unavailable.ts";
import { natsLogHarness, natsMissing } from "../log/nats-harness.ts";
import { tempDirs } from "../support/process.ts";
import { waitFor } from "../support/wait.ts";

const logger = pino({ level: "silent" });
const t0 = Date.parse("2024-05-01T00:00:00Z");

/** Event `i`: user u<i % 10>, event E<i % 3>, source web or app. */
function event(i: number, prefix = "m") {
  return {
    type: i % 5 === 0 ? "page" : "track",
    event: `E${i % 3}`,
    userId: `u${i % 10}`,
    messageId: `${prefix}${i}`,
    sourceId: i % 2 === 0 ? "web" : "app",
    receivedAt: new Date(t0 + i * 1000).toISOString(),
  };
}

/** What the HTTP layer answers for `err` (status, headers), as a route that threw it would. */
function httpError(err: unknown): { status: number; headers: Headers } {
  const set = { status: 200 as number | string, headers: {} as Record<string, string> };
  errorHandler({ logger, lifecycle: { shuttingDown: false } } as never)({
    error: err,
    code: "UNKNOWN",
    set,
    request: new Request("http://localhost/admin/api/events"),
    route: "/admin/api/events",
  } as never);
  return { status: Number(set.status), headers: new Headers(set.headers) };
}

async function append(log: NatsLogStream, from: number, to: number, prefix = "m") {
  for (let i = from; i < to; i += 250) {
    const records = [];
    for (let j = i; j < Math.min(to, i + 250); j++) {
      const e = event(j, prefix);
      records.push({
        sourceId: e.sourceId,
        type: e.type,
        messageId: e.messageId,
        payload: JSON.stringify(e),
      });
    }
    await log.append(records);
  }
}

describe.skipIf(Boolean(natsMissing))("search over the NATS log", () => {
  const nats = natsLogHarness("nsearch");
  const tmp = tempDirs();

  const setup = async (shardEvents = 1_000_000) => {
    await nats.start();
    const log = await nats.openLog(nats.options({ openWaitMs: 10_000 }));
    const dir = tmp("nats-index");
    const follow = new NatsSearchSource(log, { follow: true });
    const shards = new IndexShards(join(dir, "index"), { shardEvents });
    const indexer = new SearchIndexer(shards, follow, { logger, batch: 300, waitMs: 200 });
    const search = new EventSearch(shards, new NatsSearchSource(log, { follow: false }), {
      chunk: 50,
      maxScan: 400,
    });
    return { log, dir, follow, shards, indexer, search };
  };

  test("finds what the stream holds, indexed or not, numbered by stream sequence, newest first in pages", async () => {
    const { log, follow, shards, indexer, search } = await setup(400);
    await append(log, 0, 1000);
    await indexer.catchUp();
    expect(shards.count()).toBe(1000);
    // Past the index: read from the stream itself.
    await append(log, 1000, 1010);
    const all = async (query: { userId?: string; event?: string; messageId?: string }) => {
      const ids: string[] = [];
      const seqs: number[] = [];
      let before: number | undefined;
      for (let pages = 0; pages < 500; pages++) {
        const page = await search.search({ ...query, limit: 25, before });
        ids.push(...page.events.map((f) => f.event.messageId));
        seqs.push(...page.events.map((f) => f.seq));
        if (page.before === null) return { ids, seqs };
        before = page.before;
      }
      throw new Error("too many pages");
    };
    const expected = (pred: (i: number) => boolean) =>
      Array.from({ length: 1010 }, (_, i) => 1009 - i).filter(pred);
    const u3 = await all({ userId: "u3" });
    expect(u3.ids).toEqual(expected((i) => i % 10 === 3).map((i) => `m${i}`));
    // The stream's sequence numbers (event i is message i + 1), so a cursor means the same
    // on every instance.
    expect(u3.seqs).toEqual(expected((i) => i % 10 === 3).map((i) => i + 1));
    expect((await all({ userId: "u3", event: "E0" })).ids).toEqual(
      expected((i) => i % 10 === 3 && i % 3 === 0).map((i) => `m${i}`),
    );
    expect((await all({ messageId: "m1005" })).ids).toEqual(["m1005"]);
    const found = await search.find("app", "m999");
    expect(found?.ref).toBe("1000");
    // The stream's own store time.
    expect(found?.storedAt).toBeGreaterThan(Date.now() - 60_000);
    await follow.close();
  });

  test("far behind the index, a search reads the newest events past it (not the oldest) and pages on through the rest", async () => {
    const { log, follow, shards, indexer } = await setup(40);
    await append(log, 0, 100);
    await indexer.catchUp();
    await append(log, 100, 200);
    const search = new EventSearch(shards, new NatsSearchSource(log, { follow: false }), {
      chunk: 20,
      maxScan: 100,
      maxTail: 30,
    });
    // Just acknowledged, 100 past the index: found.
    expect((await search.find("web", "m198"))?.seq).toBe(199);
    const first = await search.search({ limit: 1000 });
    // The newest 30, and a cursor (not complete): the next page goes on below them.
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
    await follow.close();
  });

  test("the indexer follows the stream (appended by anyone) and goes on from its cursor after a restart: no event twice", async () => {
    const { log, dir, follow, shards, indexer } = await setup();
    await append(log, 0, 500);
    indexer.start();
    await waitFor(() => shards.count() === 500, { what: "the indexer to follow the stream" });
    await append(log, 500, 700);
    await waitFor(() => shards.count() === 700, { what: "the indexer to follow new appends" });
    await follow.close();
    await indexer.stop();
    shards.close();
    await append(log, 700, 800);

    const again = new IndexShards(join(dir, "index"));
    expect(again.progress()).toEqual({ next: "700", seq: 700 });
    const source = new NatsSearchSource(log, { follow: true });
    const next = new SearchIndexer(again, source, { logger, batch: 300, waitMs: 200 });
    next.start();
    await waitFor(() => again.count() === 800, { what: "the restarted indexer to go on" });
    const searchAgain = new EventSearch(again, new NatsSearchSource(log, { follow: false }));
    const u1 = await searchAgain.search({ userId: "u1", limit: 200 });
    expect(u1.events.map((f) => f.event.messageId)).toEqual(
      Array.from({ length: 80 }, (_, k) => `m${791 - k * 10}`),
    );
    expect(u1.before).toBeNull();
    await source.close();
    await next.stop();
    again.close();
  });

  test("a reader the server lost (its pulls go unanswered) is opened again where the index is", async () => {
    const { log, follow, shards, indexer } = await setup();
    await append(log, 0, 300);
    indexer.start();
    await waitFor(() => shards.count() === 300, { what: "the indexer to follow the stream" });
    const { jsm } = log.use();
    const stream = log.settings.stream;
    // As after a NATS restart that lost it: the client makes it again on its next read.
    for (const c of await jsm.consumers.list(stream).next()) {
      await jsm.consumers.delete(stream, c.name);
    }
    await append(log, 300, 400);
    // Its pulls get no answer (each ends at its timeout): then the reader asks the server
    // for its consumer, and makes it again after the last record it returned.
    await waitFor(() => shards.count() === 400, {
      what: "the indexer to go on",
      timeoutMs: 30_000,
    });
    expect(shards.progress()).toEqual({ next: "400", seq: 400 });
    await follow.close();
    await indexer.stop();
  });

  test("the server's writer thread follows the stream; an index the file log wrote (log.backend changed) is made again", async () => {
    const { log, dir } = await setup();
    await append(log, 0, 200);
    const indexDir = join(dir, "index");
    // What the file log's writer leaves: its positions as refs and cursor.
    const old = new IndexShards(indexDir);
    old.append(
      Array.from({ length: 150 }, (_, i) => indexRow(`1:${i * 100}`, event(i))!),
      "3:1200",
    );
    old.close();
    const opts = nats.options();
    const writer = await IndexWriterThread.start({
      nats: {
        backend: "nats",
        servers: opts.servers,
        stream: log.settings.stream,
        subjectPrefix: log.settings.subjectPrefix,
        replicas: 1,
        duplicateWindowSeconds: 120,
        ackWaitSeconds: 30,
      } as NatsLog,
      indexDir,
      logger,
    });
    try {
      expect(writer.storedTimes).toBeUndefined();
      const view = new IndexShards(indexDir, { readOnly: true });
      const search = new EventSearch(view, new NatsSearchSource(log, { follow: false }), {
        maxTail: 0,
      });
      try {
        await append(log, 200, 250);
        const found = await waitFor(
          async () => {
            const page = await search.search({ userId: "u7", limit: 100 });
            return page.events.length === 25 && page;
          },
          { what: "the writer thread to index the stream" },
        );
        expect(found.events[0]!.event.messageId).toBe("m247");
        expect(found.events[0]!.seq).toBe(248);
        view.refresh();
        expect(view.progress()).toEqual({ next: "250", seq: 250 });
      } finally {
        view.close();
      }
    } finally {
      await writer.stop();
    }
  });

  test("a stream deleted and created again (sequences from 1 again) makes the writer thread's index again, running or at its start", async () => {
    const { log, dir } = await setup();
    await append(log, 0, 300);
    const indexDir = join(dir, "index");
    const opts = nats.options();
    const config = {
      backend: "nats",
      servers: opts.servers,
      stream: log.settings.stream,
      subjectPrefix: log.settings.subjectPrefix,
      replicas: 1,
      duplicateWindowSeconds: 120,
      ackWaitSeconds: 30,
    } as NatsLog;
    const { jsm } = log.use();
    const recreate = async () => {
      const { config: sc } = await jsm.streams.info(log.settings.stream);
      await jsm.streams.delete(log.settings.stream);
      await jsm.streams.add(sc);
    };
    const view = new IndexShards(indexDir, { readOnly: true });
    const search = new EventSearch(view, new NatsSearchSource(log, { follow: false }), {
      maxTail: 0,
    });
    const indexed = (prefix: string, n: number) =>
      waitFor(
        async () => {
          view.refresh();
          if (view.count() !== n) return false;
          const page = await search.search({ limit: 1000 });
          const ids = page.events.map((f) => f.event.messageId);
          return ids.length === n && ids.every((id) => id.startsWith(prefix)) && page;
        },
        { what: `the index to hold the ${n} ${prefix} events only`, timeoutMs: 30_000 },
      );
    try {
      let writer = await IndexWriterThread.start({ nats: config, indexDir, logger });
      try {
        await indexed("m", 300);
        // While it runs.
        await recreate();
        await append(log, 0, 40, "n");
        const page = await indexed("n", 40);
        expect(page.events[0]!.seq).toBe(40);
        expect(page.events[0]!.event.messageId).toBe("n39");
      } finally {
        await writer.stop();
      }
      // While it is stopped: at its start it finds another stream behind its progress.
      await recreate();
      await append(log, 0, 25, "p");
      writer = await IndexWriterThread.start({ nats: config, indexDir, logger });
      try {
        await indexed("p", 25);
        view.refresh();
        expect(view.progress()).toEqual({ next: "25", seq: 25 });
        expect(view.count()).toBe(25);
      } finally {
        await writer.stop();
      }
    } finally {
      view.close();
    }
  });

  test("the event view's consumer state: acked past the ack floor, before_start for what a connection started after (start now, or a later sequence)", async () => {
    const { log } = await setup();
    await append(log, 0, 10);
    const now = await log.consumer("c-now", { start: "now" });
    const after = await log.consumer("c-after", { start: { after: "8" } });
    const all = await log.consumer("c-all", { start: "oldest" });
    await append(log, 10, 15);
    const read = await waitFor(
      async () => {
        const got = await now.read(10, 200);
        return got.length > 0 && got;
      },
      { what: "the start-now consumer to read" },
    );
    expect(read[0]!.cursor).toBe("11");
    await now.commit(read.at(-1)!.cursor);
    // Its ack floor is at (or past) 10 from its creation: still never received.
    expect(await log.committed("c-now", "3")).toBe("before_start");
    expect(await log.committed("c-now", "10")).toBe("before_start");
    expect(await log.committed("c-now", read.at(-1)!.cursor)).toBe("committed");
    expect(await log.committed("c-after", "5")).toBe("before_start");
    expect(await log.committed("c-after", "9")).toBe("pending");
    expect(await log.committed("c-all", "3")).toBe("pending");
    expect(await log.committed("c-none", "3")).toBeUndefined();
    for (const c of [now, after, all]) await c.close();
  });

  test("shards whose messages JetStream no longer holds are dropped; purged events are never answered", async () => {
    const { log, dir, follow, shards, indexer, search } = await setup(200);
    await append(log, 0, 1000);
    await indexer.catchUp();
    expect(readdirSync(join(dir, "index")).filter((f) => f.endsWith(".db"))).toHaveLength(5);
    // Messages 1..450 purged (as retention does).
    await log.trimBefore("451");
    // Gone from the stream but still in the index: checked against the stream, not answered.
    expect((await search.search({ messageId: "m10", limit: 5 })).events).toEqual([]);
    await indexer.dropExpired();
    // The shards of 1..200 and 201..400 are gone; 401..600 holds messages still there.
    expect(readdirSync(join(dir, "index")).filter((f) => f.endsWith(".db"))).toHaveLength(3);
    expect(shards.count()).toBe(600);
    expect((await search.search({ messageId: "m999", limit: 5 })).events).toHaveLength(1);
    const u3 = await search.search({ userId: "u3", limit: 200 });
    expect(u3.events).toHaveLength(55);
    expect(u3.events.at(-1)?.event.messageId).toBe("m453");
    await follow.close();
  });

  test("with NATS stopped nothing is dropped on a guess, and a search fails as storage unavailable (503) instead of answering nothing", async () => {
    const { log, dir, follow, indexer, search } = await setup(200);
    await append(log, 0, 600);
    await indexer.catchUp();
    await follow.close();
    await (await nats.start()).stop();
    await waitFor(() => !log.healthy(), { what: "the log to see NATS gone" });
    const dropped = await indexer.dropExpired().catch((err: unknown) => err);
    expect(dropped).toBeInstanceOf(StorageUnavailableError);
    expect(readdirSync(join(dir, "index")).filter((f) => f.endsWith(".db"))).toHaveLength(3);
    const failed = await search.search({ userId: "u1", limit: 5 }).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(StorageUnavailableError);
    expect(httpError(failed).status).toBe(503);
    // Last in this describe: the server stays stopped (the harness cleans it up).
  });
});

describe.skipIf(Boolean(natsMissing))(
  "search over the NATS log: a server that does not answer",
  () => {
    const nats = natsLogHarness("nstall");
    const tmp = tempDirs();

    test("a request timeout while the link still reads healthy is storage unavailable (503 with Retry-After), not a client error", async () => {
      const server = await nats.start();
      const log = await nats.openLog(nats.options({ openWaitMs: 10_000, publishTimeoutMs: 1000 }));
      await append(log, 0, 50);
      const shards = new IndexShards(join(tmp("nats-stall"), "index"));
      const search = new EventSearch(shards, new NatsSearchSource(log, { follow: false }));
      try {
        process.kill(server.pid!, "SIGSTOP");
        const failed = await search.search({ userId: "u1", limit: 5 }).catch((err: unknown) => err);
        // The client noticed nothing yet: its request timed out.
        expect(log.healthy()).toBe(true);
        expect(failed).toBeInstanceOf(StorageUnavailableError);
        const res = httpError(failed);
        expect(res.status).toBe(503);
        expect(res.headers.get("retry-after")).not.toBeNull();
      } finally {
        process.kill(server.pid!, "SIGCONT");
        shards.close();
      }
    });
  },
);
