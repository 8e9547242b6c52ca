import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import pino from "pino";
import { NatsLogStream } from "../../src/log/nats/nats-log.ts";
import { runCli } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";
import { type Cluster, startCluster } from "./cluster.ts";
import { serversMissing } from "./fixtures.ts";
import {
  type NatsServerProcess,
  type ServerProcess,
  startNatsServer,
  startRedisServer,
} from "./servers.ts";

/** Counts of each messageId in a list. */
function counts(ids: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

/**
 * Three sluice processes on one nats-server (`log.backend: nats`) and one redis-server
 * (`state.backend: redis`), as SPEC 9 runs them: exactly-once storage across instances
 * through retries and a kill -9, one shared rate limit, and 503 (never a 2xx) with
 * `/ready` 503 while NATS or Redis is gone, recovering without a restart.
 */
describe.skipIf(Boolean(serversMissing))("three instances on NATS JetStream and Redis", () => {
  let nats: NatsServerProcess;
  let redis: ServerProcess;
  let cluster: Cluster;
  const BURST = 30;

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    cluster = await startCluster({
      size: 3,
      nats,
      redis,
      name: "three",
      web: { rateLimit: { eventsPerSecond: 0.001, burst: BURST } },
      // A delivering connection too: it must not hold a start-up with NATS down.
      config: () => ({
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

  const storedIds = async (prefix: string) =>
    (await cluster.stored()).map((s) => s.messageId).filter((id) => id.startsWith(prefix));

  test("concurrent writers over all three with retries across instances, one instance killed -9 mid-way: every acknowledged messageId stored exactly once", async () => {
    const key = cluster.keys.other;
    const WRITERS = 6;
    const BATCHES = 25;
    const PER_BATCH = 4;
    const acked = new Set<string>();
    let sent = 0;
    const killAfter = Math.floor((WRITERS * BATCHES) / 3);
    let killing: Promise<void> | undefined;
    const deadline = Date.now() + 100_000;
    /** One batch, sent to instances in turn until one answers 200 (a client behind a balancer). */
    const send = async (writer: number, b: number) => {
      const batch = Array.from({ length: PER_BATCH }, (_, k) => ({
        type: "track",
        messageId: `w${writer}-b${b}-e${k}`,
        userId: `u${writer}`,
        event: "Load",
      }));
      for (let attempt = 0; Date.now() < deadline; attempt++) {
        const i = (writer + b + attempt) % cluster.size;
        if (!cluster.running(i)) continue;
        const status = await cluster
          .batch(i, key, batch)
          .then((r) => r.status)
          .catch(() => 0); // the killed instance's connections break
        if (status === 200) {
          for (const e of batch) acked.add(e.messageId);
          if (++sent === killAfter) killing = cluster.kill(1);
          return;
        }
        expect([0, 503]).toContain(status);
        // A messageId claimed by the killed instance stays refused until its claim
        // lapses (30 s): back off a little between rounds.
        if (attempt % cluster.size === cluster.size - 1) await Bun.sleep(200);
      }
      throw new Error(`batch ${writer}/${b} not acknowledged in time`);
    };
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        for (let b = 0; b < BATCHES; b++) await send(w, b);
      }),
    );
    await killing;
    expect(acked.size).toBe(WRITERS * BATCHES * PER_BATCH);
    const stored = await storedIds("w");
    const twice = [...counts(stored)].filter(([, n]) => n > 1);
    expect(twice).toEqual([]);
    expect(new Set(stored)).toEqual(acked);
    await cluster.restart(1);
  }, 150_000);

  test("the same messageIds sent to all three at the same moment are stored once (a 503 is retried)", async () => {
    const key = cluster.keys.other;
    const ids = Array.from({ length: 30 }, (_, n) => `all-${n}`);
    const send = async (i: number, id: string) => {
      for (let attempt = 0; attempt < 200; attempt++) {
        const status = (await cluster.track(i, key, id)).status;
        if (status !== 503) return status;
        await Bun.sleep(20);
      }
      return 503;
    };
    const statuses = await Promise.all(ids.flatMap((id) => [0, 1, 2].map((i) => send(i, id))));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect((await storedIds("all-")).sort()).toEqual([...ids].sort());
  }, 60_000);

  test("the crash gap: an event published (acked by NATS) by an instance that died before writing its dedup key is stored once when the client retries elsewhere", async () => {
    // What the dead instance did: the publish, with the Nats-Msg-Id ingest gives it,
    // and nothing after it (no key in Redis).
    const dead = await NatsLogStream.open({
      servers: [nats.url],
      stream: cluster.stream,
      subjectPrefix: cluster.subjectPrefix,
      logger: pino({ level: "silent" }),
    });
    const payload = new TextEncoder().encode(
      JSON.stringify({ messageId: "gap-1", sourceId: "other" }),
    );
    await dead.append([{ sourceId: "other", type: "track", messageId: "gap-1", payload }]);
    await dead.close();
    // The client never got its answer and retries on each instance in turn.
    for (const i of [0, 1, 2]) {
      expect((await cluster.track(i, cluster.keys.other, "gap-1")).status).toBe(200);
    }
    expect(await storedIds("gap-")).toEqual(["gap-1"]);
  });

  test("a shared rate limit holds across three instances: together they allow the burst, not three times it", async () => {
    const key = cluster.keys.server;
    const statuses = await Promise.all(
      Array.from({ length: BURST * 3 }, (_, n) =>
        cluster.track(n % 3, key, `rl-${n}`).then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(BURST);
    expect(statuses.filter((s) => s === 429)).toHaveLength(BURST * 2);
  });

  test("sluice log tail reads the stream: every instance's events, the last -n, one --source", async () => {
    const key = cluster.keys.other;
    for (const i of [0, 1, 2]) {
      expect((await cluster.track(i, key, `tail-${i}`)).status).toBe(200);
    }
    const lines = async (...args: string[]) => {
      const res = await runCli(["log", "tail", "--config", cluster.configFile(1), ...args]);
      expect(res.stderr).toBe("");
      expect(res.code).toBe(0);
      return res.stdout
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as { messageId: string; sourceId: string });
    };
    const all = (await lines("--from-start")).map((e) => e.messageId);
    expect(all).toEqual((await cluster.stored()).map((s) => s.messageId));
    expect(all.slice(-3)).toEqual(["tail-0", "tail-1", "tail-2"]);
    expect((await lines("-n", "2")).map((e) => e.messageId)).toEqual(["tail-1", "tail-2"]);
    expect(await cluster.track(0, cluster.keys.browser, "tail-web").then((r) => r.status)).toBe(
      200,
    );
    const other = await lines("--source", "other", "-n", "2");
    expect(other.map((e) => e.messageId)).toEqual(["tail-1", "tail-2"]);
    expect(other.every((e) => e.sourceId === "other")).toBe(true);
  }, 60_000);

  test("with admin.searchIndex false (as these instances run) search and event view answer 501 saying so", async () => {
    for (const path of ["/admin/api/events?userId=u1", "/admin/api/events/other/some-id"]) {
      const res = await fetch(`${cluster.url(0)}${path}`);
      expect(res.status).toBe(501);
      const body = (await res.json()) as { error: string };
      expect(body.error).toContain("admin.searchIndex: false");
    }
  });

  for (const which of ["nats", "redis"] as const) {
    test(`${which} down: ingest 503 (never a 2xx) and /ready 503 on every instance, one started meanwhile too; back: 200 again without a restart, each event stored once`, async () => {
      const server = which === "nats" ? nats : redis;
      const key = cluster.keys.other;
      const id = (i: number) => `${which}-outage-${i}`;
      for (const i of [0, 1, 2]) expect(await cluster.ready(i)).toBe(200);
      await server.kill();
      // An instance (re)started meanwhile starts, not ready.
      await cluster.kill(2);
      await cluster.restart(2);
      for (const i of [0, 1, 2]) {
        await waitFor(async () => (await cluster.ready(i)) === 503, {
          timeoutMs: 15_000,
          what: `/ready 503 on ${i} with ${which} down`,
        });
        const r = await cluster.track(i, key, id(i));
        expect(r.status).toBe(503);
        expect(r.headers.get("retry-after")).toBe("2");
        expect(await r.json()).toEqual({ error: "storage unavailable, retry" });
      }
      await server.start();
      for (const i of [0, 1, 2]) {
        await waitFor(async () => (await cluster.ready(i)) === 200, {
          timeoutMs: 20_000,
          what: `/ready 200 on ${i} with ${which} back`,
        });
        // A claim made just before the outage may still hold the id for a moment.
        const status = await waitFor(
          async () => {
            const s = (await cluster.track(i, key, id(i))).status;
            return s === 503 ? undefined : s;
          },
          { timeoutMs: 40_000, what: `ingest on ${i} after ${which} came back` },
        );
        expect(status).toBe(200);
      }
      expect((await storedIds(`${which}-outage-`)).sort()).toEqual([id(0), id(1), id(2)].sort());
    }, 90_000);
  }
});
