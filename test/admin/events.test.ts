import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { IndexShards } from "../../src/admin/search/shards.ts";
import type { TestServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";
import { adminGet, startAdminServer } from "./support.ts";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.cleanup();
  server = undefined;
});

interface Page {
  events: Record<string, unknown>[];
  next: string | null;
}

const search = async (s: TestServer, query: string): Promise<Page> => {
  const res = await adminGet(s, `/admin/api/events?${query}`);
  expect({ query, status: res.status }).toEqual({ query, status: 200 });
  return (await res.json()) as Page;
};

const ev = (messageId: string, userId: string, event = "Clicked", extra = {}) => ({
  type: "track",
  event,
  userId,
  messageId,
  ...extra,
});

/** Waits until the index writer has indexed `n` events of the data dir's log. */
async function indexed(s: TestServer, n: number): Promise<void> {
  const view = new IndexShards(join(s.dataDir, "index"), { readOnly: true });
  try {
    await waitFor(
      () => {
        view.refresh();
        return view.progress().seq >= n;
      },
      { what: `${n} events indexed` },
    );
  } finally {
    view.close();
  }
}

describe("GET /admin/api/events", () => {
  test("finds events by messageId, userId, anonymousId and event name, newest first", async () => {
    server = await startAdminServer();
    const key = { "x-write-key": server.keys.server };
    await server.post("/v1/batch", { batch: [ev("m1", "alice"), ev("m2", "bob", "Bought")] }, key);
    await server.post("/v1/batch", { batch: [ev("m3", "alice", "Bought")] }, key);
    await server.post("/v1/page", { anonymousId: "anon-7", messageId: "m4", name: "Home" }, key);
    await server.post("/v1/track", ev("m5", "carol"), { "x-write-key": server.keys.other });
    // Found at once (not yet indexed) and after the index caught up alike.
    for (const round of ["fresh", "indexed"]) {
      if (round === "indexed") await indexed(server!, 5);
      const ids = async (q: string) => (await search(server!, q)).events.map((e) => e.messageId);
      expect(await ids("messageId=m2")).toEqual(["m2"]);
      expect(await ids("userId=alice")).toEqual(["m3", "m1"]);
      expect(await ids("event=Bought")).toEqual(["m3", "m2"]);
      expect(await ids("event=Bought&userId=alice")).toEqual(["m3"]);
      expect(await ids("anonymousId=anon-7")).toEqual(["m4"]);
      expect(await ids("type=page")).toEqual(["m4"]);
      expect(await ids("source=other")).toEqual(["m5"]);
      expect(await ids("source=web&event=Clicked")).toEqual(["m1"]);
      expect(await ids("")).toEqual(["m5", "m4", "m3", "m2", "m1"]);
      expect(await ids("messageId=nope")).toEqual([]);
    }
    const one = await search(server, "messageId=m1");
    expect(one.events[0]).toMatchObject({ sourceId: "web", keyId: "wk_server", userId: "alice" });
    expect(one.next).toBeNull();
  });

  test("pages newest first with a cursor, each event once, and a time range", async () => {
    server = await startAdminServer();
    const key = { "x-write-key": server.keys.server };
    for (let i = 0; i < 7; i++) await server.post("/v1/track", ev(`p${i}`, "u"), key);
    // `mid` in a millisecond of its own: p6 was received before it, p7 after it (the
    // same millisecond put p6 on both sides of the range now and then).
    const sixth = Date.now();
    await waitFor(() => Date.now() > sixth);
    const mid = Date.now();
    await waitFor(() => Date.now() > mid);
    for (let i = 7; i < 12; i++) await server.post("/v1/track", ev(`p${i}`, "u"), key);
    const seen: unknown[] = [];
    let cursor = "";
    for (let pages = 0; pages < 10; pages++) {
      const page = await search(server, `userId=u&limit=5${cursor ? `&cursor=${cursor}` : ""}`);
      seen.push(...page.events.map((e) => e.messageId));
      if (!page.next) break;
      cursor = page.next;
    }
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => `p${11 - i}`));
    const after = (await search(server, `from=${new Date(mid).toISOString()}`)).events;
    expect(after.map((e) => e.messageId)).toEqual(["p11", "p10", "p9", "p8", "p7"]);
    const before = (await search(server, `to=${mid}`)).events;
    expect(before.map((e) => e.messageId)).toEqual(["p6", "p5", "p4", "p3", "p2", "p1", "p0"]);
  });

  test("bad parameters are 400 naming the parameter", async () => {
    server = await startAdminServer();
    const cases: [string, string][] = [
      ["limit=0", "limit"],
      ["limit=201", "limit"],
      ["limit=ten", "limit"],
      ["cursor=garbage!", "cursor"],
      [`cursor=${Buffer.from("c2.5").toString("base64url")}`, "cursor"],
      ["from=yesterday", "from"],
      ["to=not-a-time", "to"],
      ["from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z", "to"],
      ["type=click", "type"],
      ["source=nope", "source"],
      [`messageId=${"x".repeat(101)}`, "messageId"],
    ];
    for (const [query, parameter] of cases) {
      const res = await adminGet(server, `/admin/api/events?${query}`);
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
      const body = (await res.json()) as { error: string; parameter: string };
      expect({ query, parameter: body.parameter }).toEqual({ query, parameter });
      expect(body.error).toStartWith(`${parameter}:`);
    }
    expect((await fetch(`${server.url}/admin/api/events?limit=0`)).status).toBe(401);
  });

  test("with admin.searchIndex off, search answers 501 and no index is written", async () => {
    server = await startAdminServer({ config: { admin: { tokens: [], searchIndex: false } } });
    const res = await fetch(`${server.url}/admin/api/events`);
    expect(res.status).toBe(501);
    expect(await res.json()).toEqual({
      error: "the search index is off (admin.searchIndex: false)",
    });
    expect(await Bun.file(`${server.dataDir}/index`).exists()).toBe(false);
  });
});

describe("GET /admin/api/events/{sourceId}/{messageId}", () => {
  test("the event and its path: stored position, each connection, its function run", async () => {
    server = await startAdminServer({
      files: {
        "functions/note.js":
          'export default function (event, ctx) { ctx.log.info("saw " + event.messageId); }\n',
      },
      config: {
        functions: [{ id: "note", file: "./functions/note.js" }],
        connections: [
          {
            id: "con_file",
            source: "web",
            destination: { type: "file", path: "./out/web.ndjson", maxWaitMs: 20 },
            functions: ["note"],
          },
        ],
      },
    });
    await server.post("/v1/track", ev("d1", "dora"), { "x-write-key": server.keys.server });
    const get = async () => {
      const res = await adminGet(server!, "/admin/api/events/web/d1");
      expect(res.status).toBe(200);
      return (await res.json()) as {
        event: Record<string, unknown>;
        path: { position: string; receivedAt: string; connections: Record<string, unknown>[] };
      };
    };
    const deadline = Date.now() + 10_000;
    let detail = await get();
    while (detail.path.connections[0]?.status !== "delivered" && Date.now() < deadline) {
      await Bun.sleep(50);
      detail = await get();
    }
    expect(detail.event).toMatchObject({ messageId: "d1", userId: "dora", sourceId: "web" });
    expect(detail.path.position).toMatch(/^\d+:\d+$/);
    expect(detail.path.receivedAt).toBe(detail.event.receivedAt as string);
    const [con] = detail.path.connections;
    expect(con).toMatchObject({ connectionId: "con_file", status: "delivered", deadLetter: null });
    const runs = con!.functions as { logs: { message: string }[]; execLog: unknown[] }[];
    expect(runs[0]!.logs.map((l) => l.message)).toEqual(["saw d1"]);
    expect(runs[0]!.execLog).toHaveLength(1);

    const missing = await adminGet(server, "/admin/api/events/web/nope");
    expect(missing.status).toBe(404);
    expect((await adminGet(server, "/admin/api/events/other/d1")).status).toBe(404);
    expect((await fetch(`${server.url}/admin/api/events/web/d1`)).status).toBe(401);
  });

  test("a connection made later with start now shows an older event as before_start, a newer one as delivered", async () => {
    const connection = (id: string, start?: string) => ({
      id,
      source: "web",
      ...(start ? { start } : {}),
      destination: { type: "file", path: `./out/${id}.ndjson`, maxWaitMs: 20 },
    });
    server = await startAdminServer({ config: { connections: [connection("con_early")] } });
    const key = { "x-write-key": server.keys.server };
    expect((await server.post("/v1/track", ev("e1", "eve"), key)).status).toBe(200);
    const statuses = async (messageId: string) => {
      const res = await adminGet(server!, `/admin/api/events/web/${messageId}`);
      expect(res.status).toBe(200);
      const { path } = (await res.json()) as {
        path: { connections: { connectionId: string; status: string }[] };
      };
      return Object.fromEntries(path.connections.map((c) => [c.connectionId, c.status]));
    };
    await waitFor(async () => (await statuses("e1")).con_early === "delivered", {
      what: "e1 delivered by con_early",
    });
    // Restarted with one more connection, which starts at the log's end.
    (server.config.connections as unknown[]).push(connection("con_late", "now"));
    await server.restart();
    expect((await server.post("/v1/track", ev("e2", "eve"), key)).status).toBe(200);
    expect(await statuses("e1")).toEqual({ con_early: "delivered", con_late: "before_start" });
    await waitFor(
      async () => {
        const now = await statuses("e2");
        return now.con_early === "delivered" && now.con_late === "delivered";
      },
      { what: "e2 delivered by both connections" },
    );
    // Kept across a restart: the start is stored, not the first offset seen this run.
    await server.restart();
    expect(await statuses("e1")).toEqual({ con_early: "delivered", con_late: "before_start" });
  });
});

describe("the path's storedAt", () => {
  /** The path's receivedAt and storedAt of one event, in ms (storedAt null when not known). */
  const times = async (s: TestServer, messageId: string) => {
    const res = await adminGet(s, `/admin/api/events/web/${messageId}`);
    expect({ messageId, status: res.status }).toEqual({ messageId, status: 200 });
    const { path } = (await res.json()) as {
      path: { receivedAt: string; storedAt: string | null };
    };
    if (path.storedAt !== null) expect(new Date(path.storedAt).toISOString()).toBe(path.storedAt);
    return {
      received: Date.parse(path.receivedAt),
      stored: path.storedAt === null ? null : Date.parse(path.storedAt),
    };
  };

  test("is when the record became durable: after receipt, before the answer, for single events and batches", async () => {
    server = await startAdminServer();
    const key = { "x-write-key": server.keys.server };
    expect((await server.post("/v1/track", ev("s1", "sam"), key)).status).toBe(200);
    const singleAnswered = Date.now();
    // The next request arrives after that answer: a stored time taken from a later
    // append than the event's own would lie past singleAnswered.
    await waitFor(() => Date.now() > singleAnswered);
    const batch = { batch: [ev("b1", "bea"), ev("b2", "bea"), ev("b3", "bea")] };
    expect((await server.post("/v1/batch", batch, key)).status).toBe(200);
    const batchAnswered = Date.now();
    await waitFor(() => Date.now() > batchAnswered);
    expect((await server.post("/v1/track", ev("s2", "sam"), key)).status).toBe(200);
    const lastAnswered = Date.now();

    const answered: Record<string, number> = {
      s1: singleAnswered,
      b1: batchAnswered,
      b2: batchAnswered,
      b3: batchAnswered,
      s2: lastAnswered,
    };
    const all = async () => {
      const out: Record<string, number> = {};
      for (const [id, by] of Object.entries(answered)) {
        const { received, stored } = await times(server!, id);
        expect({ id, stored }).toEqual({ id, stored: expect.any(Number) });
        expect({ id, afterReceipt: stored! >= received }).toEqual({ id, afterReceipt: true });
        expect({ id, beforeAnswer: stored! <= by }).toEqual({ id, beforeAnswer: true });
        out[id] = stored!;
      }
      return out;
    };
    // At once (read from the log, not indexed yet), then from the index: the same times.
    const fresh = await all();
    await indexed(server, 5);
    expect(await all()).toEqual(fresh);
    // One batch is one append: its events became durable together.
    expect(fresh.b2).toBe(fresh.b1!);
    expect(fresh.b3).toBe(fresh.b1!);
  });

  test("is kept across a restart right after the answer (the writer indexes the last appends as it stops)", async () => {
    server = await startAdminServer();
    const key = { "x-write-key": server.keys.server };
    expect((await server.post("/v1/track", ev("r1", "rita"), key)).status).toBe(200);
    const answered = Date.now();
    await server.restart();
    const { received, stored } = await times(server, "r1");
    expect(stored).toBeGreaterThanOrEqual(received);
    expect(stored).toBeLessThanOrEqual(answered);
  });

  test("an index shard written before stored times were kept still answers, with null", async () => {
    server = await startAdminServer();
    const key = { "x-write-key": server.keys.server };
    expect((await server.post("/v1/track", ev("old1", "olga"), key)).status).toBe(200);
    await indexed(server, 1);
    await server.stop();
    // The shard as the version before wrote it: no `stored` column.
    const index = join(server.dataDir, "index");
    for (const file of readdirSync(index).filter((f) => f.endsWith(".db"))) {
      const db = new Database(join(index, file));
      db.exec("ALTER TABLE events DROP COLUMN stored");
      db.close();
    }
    await server.restart();
    expect(await times(server, "old1")).toMatchObject({ stored: null });
    // New events in the same shard have theirs, at once and once indexed.
    expect((await server.post("/v1/track", ev("new1", "nat"), key)).status).toBe(200);
    const answered = Date.now();
    const fresh = await times(server, "new1");
    await indexed(server, 2);
    for (const t of [fresh, await times(server, "new1")]) {
      expect(t.stored).toBeGreaterThanOrEqual(t.received);
      expect(t.stored).toBeLessThanOrEqual(answered);
    }
    expect(await times(server, "old1")).toMatchObject({ stored: null });
    // Searching the old rows works as before.
    const page = await search(server, "userId=olga");
    expect(page.events.map((e) => e.messageId)).toEqual(["old1"]);
  });
});
