import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { IndexShards } from "../../src/admin/search/shards.ts";
import { waitFor } from "../support/wait.ts";
import { type Cluster, startCluster } from "./cluster.ts";
import { serversMissing } from "./fixtures.ts";
import {
  type NatsServerProcess,
  type ServerProcess,
  startNatsServer,
  startRedisServer,
} from "./servers.ts";

interface Found {
  events: { messageId: string; userId: string; event: string; sourceId: string }[];
  next: string | null;
}

interface Detail {
  event: { messageId: string };
  path: {
    position: string;
    storedAt: string | null;
    connections: { connectionId: string; status: string; attempts: unknown[] }[];
  };
}

/**
 * The inspector's search and event view with `log.backend: nats` (SPEC 9: "the
 * inspector reads the stream"): two instances, each indexing the whole stream, so
 * either finds what was sent to the other.
 */
describe.skipIf(Boolean(serversMissing))("inspector search on NATS JetStream", () => {
  let nats: NatsServerProcess;
  let redis: ServerProcess;
  let cluster: Cluster;

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    cluster = await startCluster({
      size: 2,
      nats,
      redis,
      name: "nsearch",
      config: () => ({
        admin: { searchIndex: true },
        connections: [
          { id: "con_file", source: "other", destination: { type: "file", path: "./out.ndjson" } },
        ],
      }),
    });
  }, 90_000);

  afterAll(async () => {
    await cluster?.cleanup();
    await nats?.cleanup();
    await redis?.cleanup();
  });

  const search = async (i: number, query: string): Promise<Found> => {
    const res = await fetch(`${cluster.url(i)}/admin/api/events?${query}`);
    expect(res.status).toBe(200);
    return (await res.json()) as Found;
  };
  const detail = async (i: number, sourceId: string, messageId: string) => {
    const res = await fetch(`${cluster.url(i)}/admin/api/events/${sourceId}/${messageId}`);
    return { status: res.status, body: (await res.json()) as Detail };
  };

  test("an event acknowledged by one instance is found right away through either, by messageId, userId and event name", async () => {
    const key = cluster.keys.other;
    const res = await cluster.track(0, key, "s-one", { userId: "search-user", event: "Searched" });
    expect(res.status).toBe(200);
    for (const i of [1, 0]) {
      const byId = await search(i, "messageId=s-one");
      expect(byId.events.map((e) => e.messageId)).toEqual(["s-one"]);
      expect(byId.next).toBeNull();
      const byUser = await search(i, "userId=search-user");
      expect(byUser.events.map((e) => e.messageId)).toEqual(["s-one"]);
      const byName = await search(i, "event=Searched&source=other");
      expect(byName.events.map((e) => e.messageId)).toEqual(["s-one"]);
    }
  });

  test("pages newest first, and a page's cursor means the same on the other instance", async () => {
    const key = cluster.keys.other;
    const ids = Array.from({ length: 12 }, (_, n) => `s-page-${n}`);
    for (const [n, id] of ids.entries()) {
      expect((await cluster.track(n % 2, key, id, { userId: "pager" })).status).toBe(200);
    }
    const seen: string[] = [];
    let cursor: string | null = "";
    for (let page = 0; cursor !== null && page < 20; page++) {
      // Pages asked of the two instances in turn, as a balancer would.
      const found = await search(page % 2, `userId=pager&limit=5&cursor=${cursor}`);
      seen.push(...found.events.map((e) => e.messageId));
      cursor = found.next;
    }
    expect(seen).toEqual(ids.toReversed());
  });

  test("the event view: its stream sequence, stored time, and each connection's state whichever instance delivered it", async () => {
    const key = cluster.keys.other;
    expect((await cluster.track(0, key, "s-view")).status).toBe(200);
    const stored = (await cluster.stored()).map((s) => s.messageId);
    const seq = stored.indexOf("s-view") + 1;
    expect(seq).toBeGreaterThan(0);
    const views = await waitFor(
      async () => {
        const both = await Promise.all([0, 1].map((i) => detail(i, "other", "s-view")));
        const settled = both.every(
          (v) => v.status === 200 && v.body.path.connections[0]?.status !== "pending",
        );
        return settled && both.map((v) => v.body);
      },
      { what: "the event to be delivered", timeoutMs: 20_000 },
    );
    for (const v of views) {
      expect(v.event.messageId).toBe("s-view");
      expect(v.path.position).toBe(String(seq));
      expect(v.path.storedAt).not.toBeNull();
      expect(v.path.connections.map((c) => c.connectionId)).toEqual(["con_file"]);
    }
    // The instance that delivered it has the attempt; the other knows from the
    // connection's consumer that it was acknowledged.
    const statuses = views.map((v) => v.path.connections[0]!.status).sort();
    expect(statuses).toEqual(["acked", "delivered"]);
    const delivered = views.find((v) => v.path.connections[0]!.status === "delivered")!;
    expect(delivered.path.connections[0]!.attempts.length).toBeGreaterThan(0);
    expect((await detail(1, "other", "no-such-event")).status).toBe(404);
  });

  test("after a kill -9 and a restart the index goes on from its cursor: what came meanwhile is found, nothing twice", async () => {
    const key = cluster.keys.other;
    for (let n = 0; n < 5; n++) {
      expect((await cluster.track(n % 2, key, `s-restart-${n}`, { userId: "again" })).status).toBe(
        200,
      );
    }
    // Indexed by instance 1 before it dies: its index itself (not a search, which also
    // reads what the index has not reached) is at or past the fifth.
    const indexDir = join(dirname(cluster.configFile(1)), "data", "index");
    const fifth = (await cluster.stored()).findIndex((s) => s.messageId === "s-restart-4") + 1;
    expect(fifth).toBeGreaterThan(0);
    const shardFile = () => readdirSync(indexDir).find((f) => f.endsWith(".db"))!;
    const view = () => new IndexShards(indexDir, { readOnly: true });
    const before = view();
    try {
      await waitFor(
        () => {
          before.refresh();
          return before.progress().seq >= fifth;
        },
        { what: "instance 1 to index the first five" },
      );
    } finally {
      before.close();
    }
    await cluster.kill(1);
    // What it committed before it died, and the file it is in.
    const dead = view();
    const progressAtKill = dead.progress();
    const rowsAtKill = dead.count();
    dead.close();
    expect(progressAtKill.seq).toBeGreaterThanOrEqual(fifth);
    const inode = statSync(join(indexDir, shardFile())).ino;
    for (let n = 5; n < 10; n++) {
      expect((await cluster.track(0, key, `s-restart-${n}`, { userId: "again" })).status).toBe(200);
    }
    await cluster.restart(1);
    const found = await search(1, "userId=again&limit=50");
    expect(found.events.map((e) => e.messageId)).toEqual(
      Array.from({ length: 10 }, (_, n) => `s-restart-${9 - n}`),
    );
    expect(found.next).toBeNull();
    // Its index holds each message of the stream once, numbered by stream sequence: it
    // went on from its cursor in the same shard file (a rebuild deletes and makes it
    // again), adding only what came after it.
    const stream = await cluster.stored();
    const index = view();
    try {
      await waitFor(
        () => {
          index.refresh();
          return index.progress().seq === stream.length;
        },
        { what: "instance 1 to index the whole stream" },
      );
      expect(index.count()).toBe(stream.length);
      expect(index.count() - rowsAtKill).toBe(stream.length - progressAtKill.seq);
      expect(statSync(join(indexDir, shardFile())).ino).toBe(inode);
    } finally {
      index.close();
    }
  }, 60_000);
  test("a connection made later (start now) shows an older event as before_start, not acked", async () => {
    const key = cluster.keys.other;
    expect((await cluster.track(0, key, "s-early")).status).toBe(200);
    // Instance 1 restarted with one more connection, which starts at the stream's end.
    await cluster.kill(1);
    const file = cluster.configFile(1);
    const config = JSON.parse(readFileSync(file, "utf8")) as {
      connections: Record<string, unknown>[];
    };
    config.connections.push({
      id: "con_late",
      source: "other",
      start: "now",
      destination: { type: "file", path: "./late.ndjson" },
    });
    writeFileSync(file, JSON.stringify(config));
    await cluster.restart(1);
    const early = await detail(1, "other", "s-early");
    expect(early.status).toBe(200);
    const late = (v: Detail) => v.path.connections.find((c) => c.connectionId === "con_late");
    expect(late(early.body)?.status).toBe("before_start");
    // One stored after it started is delivered by it (only instance 1 has it).
    expect((await cluster.track(0, key, "s-after-late")).status).toBe(200);
    await waitFor(
      async () => late((await detail(1, "other", "s-after-late")).body)?.status === "delivered",
      { what: "the late connection to deliver what came after it", timeoutMs: 20_000 },
    );
  }, 60_000);
});
