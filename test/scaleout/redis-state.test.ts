import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import pino from "pino";
import { RedisDedupStore } from "../../src/dedup/redis.ts";
import { RedisConnection } from "../../src/state/redis.ts";
import {
  basic,
  makeTestConfig,
  type SpawnedServer,
  spawnServer,
  storedEvents,
} from "../support/server.ts";
import { waitFor } from "../support/wait.ts";
import { serversMissing } from "./fixtures.ts";
import { type ServerProcess, startRedisServer } from "./servers.ts";

/**
 * Two sluice processes, each with its own data dir (and file log), sharing one Redis
 * (`state.backend: redis`): dedup keys and rate-limit buckets hold across both, and a
 * Redis outage is a 503 (never a 2xx) until Redis is back, with no sluice restart.
 */
describe.skipIf(Boolean(serversMissing))("two instances sharing Redis state", () => {
  let redis: ServerProcess;
  const made: ReturnType<typeof makeTestConfig>[] = [];
  const procs: SpawnedServer[] = [];
  const BURST = 12;

  beforeAll(async () => {
    redis = await startRedisServer();
    // Both configs share the write keys (same key hashes), as instances behind one load balancer do.
    const first = makeTestConfig({
      web: { rateLimit: { eventsPerSecond: 0.001, burst: BURST } },
      config: { state: { backend: "redis", url: redis.url, keyPrefix: `t${process.pid}` } },
    });
    const second = makeTestConfig();
    writeFileSync(
      second.configFile,
      JSON.stringify({ ...first.config, server: { ...(first.config.server as object) } }),
    );
    made.push(first, { ...second, keys: first.keys });
    for (const m of made) procs.push(await spawnServer(m.configFile));
  }, 60_000);

  afterAll(async () => {
    for (const p of procs) {
      p.proc.kill("SIGTERM");
      const killer = setTimeout(() => p.proc.kill("SIGKILL"), 10_000);
      await p.proc.exited;
      clearTimeout(killer);
    }
    await redis?.cleanup();
    for (const m of made) rmSync(m.dir, { recursive: true, force: true });
  });

  const track = (i: number, key: string, messageId: string) =>
    fetch(`${procs[i]!.url}/v1/track`, {
      method: "POST",
      headers: { "content-type": "application/json", ...basic(key) },
      body: JSON.stringify({ messageId, userId: "u1", event: "Scale" }),
    });
  const ready = async (i: number) => (await fetch(`${procs[i]!.url}/ready`)).status;
  const stored = async (i: number) =>
    (await storedEvents(made[i]!.dataDir)).map((e) => e.messageId as string);

  test("the same messageId sent to both instances is stored once across both logs", async () => {
    const key = made[0]!.keys.other;
    const ids = Array.from({ length: 10 }, (_, n) => `same-${n}`);
    for (const id of ids) {
      expect((await track(0, key, id)).status).toBe(200);
      expect((await track(1, key, id)).status).toBe(200); // a duplicate: acknowledged, not stored
      expect((await track(0, key, id)).status).toBe(200);
    }
    // Also the other way round, first on the second instance.
    expect((await track(1, key, "b-first")).status).toBe(200);
    expect((await track(0, key, "b-first")).status).toBe(200);
    const all = [...(await stored(0)), ...(await stored(1))].filter(
      (id) => id.startsWith("same-") || id === "b-first",
    );
    expect(all.sort()).toEqual([...ids, "b-first"].sort());
    expect(await stored(1)).toContain("b-first");
  });

  test("the same messageIds sent to both instances at the same moment are stored once (a 503 is retried)", async () => {
    const key = made[0]!.keys.other;
    const ids = Array.from({ length: 40 }, (_, n) => `together-${n}`);
    /** A client that retries a 503 (the other instance is storing the id), bounded. */
    const send = async (i: number, id: string) => {
      for (let attempt = 0; attempt < 100; attempt++) {
        const status = (await track(i, key, id)).status;
        if (status !== 503) return status;
        await Bun.sleep(20); // the client's back-off
      }
      return 503;
    };
    const statuses = await Promise.all(ids.flatMap((id) => [send(0, id), send(1, id)]));
    expect(statuses.every((s) => s === 200)).toBe(true);
    const all = [...(await stored(0)), ...(await stored(1))].filter((id) =>
      id.startsWith("together-"),
    );
    expect(all.sort()).toEqual([...ids].sort());
  });

  test("an id another instance is storing right now (claimed in Redis): 503 with Retry-After 1, the body names no host; once that instance stored it, the retry is a duplicate", async () => {
    const key = made[0]!.keys.other;
    const silent = pino({ level: "silent" });
    // A third instance mid-request: its check of the id claimed it in Redis.
    const conn = await RedisConnection.open(redis.url, {
      logger: silent,
      keyPrefix: `t${process.pid}`,
    });
    const other = RedisDedupStore.open(conn, { windowSeconds: 3600, logger: silent });
    try {
      expect(await other.seen("other", ["claimed-1"])).toEqual(new Set());
      for (const i of [0, 1]) {
        const r = await track(i, key, "claimed-1");
        expect(r.status).toBe(503);
        expect(r.headers.get("retry-after")).toBe("1");
        expect(await r.json()).toEqual({ error: "storage unavailable, retry" });
      }
      // It stored the event and wrote the key: the client's retry is a duplicate.
      await other.remember([{ sourceId: "other", messageId: "claimed-1" }], "1");
    } finally {
      await other.close();
      await conn.close();
    }
    for (const i of [0, 1]) expect((await track(i, key, "claimed-1")).status).toBe(200);
    expect([...(await stored(0)), ...(await stored(1))]).not.toContain("claimed-1");
  });

  test("a shared rate limit holds across both instances: together they allow the burst, not twice it", async () => {
    const key = made[0]!.keys.server;
    const statuses = await Promise.all(
      Array.from({ length: BURST * 3 }, (_, n) =>
        track(n % 2, key, `rl-${n}`).then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(BURST);
    expect(statuses.filter((s) => s === 429)).toHaveLength(BURST * 2);
  });

  test("Redis down: ingest 503 and /ready 503 on both, an instance started meanwhile too; Redis back: 200 again without a restart", async () => {
    const key = made[0]!.keys.other;
    expect([await ready(0), await ready(1)]).toEqual([200, 200]);
    await redis.kill();
    for (const i of [0, 1]) {
      await waitFor(async () => (await ready(i)) === 503, {
        timeoutMs: 10_000,
        what: `/ready 503 on ${i}`,
      });
      const r = await track(i, key, `outage-${i}`);
      expect(r.status).toBe(503);
      expect(r.headers.get("retry-after")).toBe("2");
      expect(await r.json()).toEqual({ error: "storage unavailable, retry" });
    }
    // A third instance started while Redis is down starts, not ready, and refuses events.
    const third = makeTestConfig();
    made.push({ ...third, keys: made[0]!.keys });
    writeFileSync(third.configFile, JSON.stringify(made[0]!.config));
    procs.push(await spawnServer(third.configFile));
    expect(await ready(2)).toBe(503);
    expect((await track(2, key, "outage-2")).status).toBe(503);
    await redis.start();
    for (const i of [0, 1, 2]) {
      await waitFor(async () => (await ready(i)) === 200, {
        timeoutMs: 15_000,
        what: `/ready 200 on ${i}`,
      });
      expect((await track(i, key, `outage-${i}`)).status).toBe(200);
    }
    // Each instance stored its event once, after the outage, and nothing during it.
    expect((await stored(0)).filter((id) => id.startsWith("outage-"))).toEqual(["outage-0"]);
    expect((await stored(1)).filter((id) => id.startsWith("outage-"))).toEqual(["outage-1"]);
    expect((await stored(2)).filter((id) => id.startsWith("outage-"))).toEqual(["outage-2"]);
    // Dedup works again across instances.
    expect((await track(1, key, "outage-0")).status).toBe(200);
    expect((await stored(1)).filter((id) => id === "outage-0")).toHaveLength(0);
  }, 60_000);
});
