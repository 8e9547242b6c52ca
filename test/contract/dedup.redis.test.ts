import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisDedupStore } from "../../src/dedup/redis.ts";
import { isUnavailable } from "../../src/storage/unavailable.ts";
import { fileServers, freshPrefix, serversMissing } from "../scaleout/fixtures.ts";
import { waitFor } from "../support/wait.ts";
import { dedupContract } from "./dedup.ts";

const servers = fileServers();

describe.skipIf(Boolean(serversMissing))("redis", () => {
  dedupContract("redis (keys shared by every instance)", {
    async open({ windowSeconds, now }) {
      const prefix = freshPrefix("dedup");
      // The checkpoint is the instance's own (its log's position): a file in its data dir.
      const dir = mkdtempSync(join(tmpdir(), "sluice-dedup-redis-"));
      const checkpointFile = join(dir, "dedup-checkpoint.json");
      let conn = await servers.redisConnection("dedup", prefix);
      let store = RedisDedupStore.open(conn, { windowSeconds, now, checkpointFile });
      return {
        store,
        async reopen() {
          await store.close();
          await conn.close();
          conn = await servers.redisConnection("dedup", prefix);
          store = RedisDedupStore.open(conn, { windowSeconds, now, checkpointFile });
          return store;
        },
        async cleanup() {
          await store.close();
          await conn.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  });
});

describe.skipIf(Boolean(serversMissing))("Redis dedup store through an outage", () => {
  const own = fileServers();
  test("Redis down: seen fails as unavailable, healthy() is false, keys are kept; back up: written without a restart", async () => {
    const redis = await own.redis();
    const prefix = freshPrefix("outage");
    const conn = await own.redisConnection("outage", prefix);
    const store = RedisDedupStore.open(conn, { windowSeconds: 3600 });
    try {
      store.remember([{ sourceId: "web", messageId: "before" }], "1");
      await waitFor(() => store.checkpoint() === "1", { timeoutMs: 5000 });
      await redis.kill();
      await waitFor(() => !store.healthy(), { timeoutMs: 5000 });
      let error: unknown;
      await store.seen("web", ["before"]).catch((e) => {
        error = e;
      });
      expect(isUnavailable(error)).toBe(true);
      store.remember([{ sourceId: "web", messageId: "during" }], "2");
      // Held in memory: this instance still finds it, and the checkpoint does not pass it.
      expect([...(await store.seen("web", ["during"]))]).toEqual(["during"]);
      expect(store.checkpoint()).toBe("1");
      expect(store.healthy()).toBe(false);
      await redis.start();
      await waitFor(() => store.healthy() && store.checkpoint() === "2", {
        timeoutMs: 10_000,
      });
      // Written to Redis: another instance's store (a second connection) sees both.
      const otherConn = await own.redisConnection("outage", prefix);
      const other = RedisDedupStore.open(otherConn, { windowSeconds: 3600 });
      try {
        expect([...(await other.seen("web", ["before", "during", "never"]))].sort()).toEqual([
          "before",
          "during",
        ]);
      } finally {
        await other.close();
        await otherConn.close();
      }
    } finally {
      await store.close();
      await conn.close();
    }
  });
});
