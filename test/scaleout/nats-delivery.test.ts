import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { consumerName } from "../../src/log/nats/nats-log.ts";
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

interface Delivery {
  instance: string;
  key: string;
  ids: string[];
}

/**
 * A webhook receiver that records every request (which instance sent it, its
 * Idempotency-Key, its messageIds), and can hold requests unanswered (a destination
 * that hangs) until released.
 */
function receiver() {
  const deliveries: Delivery[] = [];
  const held: { delivery: Delivery; release: () => void }[] = [];
  let holding = false;
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      // A destination that refuses everything for good: its batches are dead letters.
      if (new URL(req.url).pathname === "/bad") return new Response("no", { status: 400 });
      const batch = (await req.json()) as { messageId: string }[];
      const delivery = {
        instance: req.headers.get("x-instance") ?? "?",
        key: req.headers.get("idempotency-key") ?? "",
        ids: batch.map((e) => e.messageId),
      };
      if (holding) {
        // Answered only when released; a killed sender never reads the answer.
        await new Promise<void>((release) => held.push({ delivery, release }));
        return new Response("late", { status: 500 });
      }
      deliveries.push(delivery);
      return new Response("ok");
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/hook`,
    bad: `http://127.0.0.1:${server.port}/bad`,
    deliveries,
    held,
    hold(on: boolean) {
      holding = on;
      if (!on) for (const h of held.splice(0)) h.release();
    },
    stop: () => server.stop(true),
  };
}

/**
 * Delivery shared by three instances on one NATS stream (SPEC 9): one durable pull
 * consumer per connection, so each batch goes out from one instance; acked after the
 * destination accepted it; an instance killed while it holds a batch hands it to
 * another after `ack_wait`, sent with the same Idempotency-Key.
 */
describe.skipIf(Boolean(serversMissing))("three instances deliver from one NATS stream", () => {
  let nats: NatsServerProcess;
  let redis: ServerProcess;
  let cluster: Cluster;
  const hook = receiver();

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    cluster = await startCluster({
      size: 3,
      nats,
      redis,
      name: "deliver",
      log: { ackWaitSeconds: 5 },
      config: (i) => ({
        connections: [
          {
            id: "con_hook",
            source: "other",
            destination: {
              type: "webhook",
              url: hook.url,
              headers: { "x-instance": String(i) },
              batchSize: 10,
              maxWaitMs: 100,
              retryBaseMs: 100,
              retryMaxDelayMs: 200,
            },
          },
          {
            id: "con_bad",
            source: "web",
            destination: { type: "webhook", url: hook.bad, batchSize: 5, maxWaitMs: 100 },
          },
        ],
      }),
    });
  }, 90_000);

  afterAll(async () => {
    hook.hold(false);
    await cluster?.cleanup();
    hook.stop();
    await nats?.cleanup();
    await redis?.cleanup();
  });

  const send = async (prefix: string, count: number) => {
    for (let n = 0; n < count; n += 10) {
      const batch = Array.from({ length: Math.min(10, count - n) }, (_, k) => ({
        type: "track",
        messageId: `${prefix}-${n + k}`,
        userId: "u1",
        event: "Deliver",
      }));
      const r = await cluster.batch((n / 10) % 3, cluster.keys.other, batch);
      expect(r.status).toBe(200);
    }
  };
  const deliveredIds = (prefix: string) =>
    new Set(hook.deliveries.flatMap((d) => d.ids).filter((id) => id.startsWith(prefix)));

  test("every event is delivered; each batch (Idempotency-Key) by one instance, and the work is shared", async () => {
    await send("share", 300);
    await waitFor(() => deliveredIds("share").size === 300, {
      timeoutMs: 30_000,
      what: () => `300 delivered (got ${deliveredIds("share").size})`,
    });
    const ours = hook.deliveries.filter((d) => d.ids.some((id) => id.startsWith("share")));
    const byKey = new Map<string, Delivery[]>();
    for (const d of ours) byKey.set(d.key, [...(byKey.get(d.key) ?? []), d]);
    for (const [, ds] of byKey) {
      // One sender per batch, and the same events under the same key.
      expect(new Set(ds.map((d) => d.instance)).size).toBe(1);
      expect(new Set(ds.map((d) => d.ids.join(","))).size).toBe(1);
    }
    // No event in two different batches: nothing was delivered twice.
    const all = [...byKey.values()].flatMap((ds) => ds[0]!.ids);
    expect(all.length).toBe(300);
    // More than one instance delivered (the consumer is shared, not owned by one).
    expect(new Set(ours.map((d) => d.instance)).size).toBeGreaterThan(1);
  }, 60_000);

  test("a connection's consumer deleted on the server while they run (nats consumer rm): made again, and delivery goes on; what was delivered and seen acked is not sent again", async () => {
    await send("before-rm", 30);
    await waitFor(() => deliveredIds("before-rm").size === 30, {
      timeoutMs: 30_000,
      what: () => `30 delivered (got ${deliveredIds("before-rm").size})`,
    });
    // Every instance has seen the consumer's ack floor past them (its backlog 0).
    for (const i of [0, 1, 2]) {
      await waitFor(
        async () =>
          (await (await fetch(`${cluster.url(i)}/metrics`)).text()).includes(
            'sluice_connection_lag_events{connection="con_hook"} 0',
          ),
        { timeoutMs: 15_000, what: `con_hook's backlog 0 on instance ${i}` },
      );
    }
    const sentBefore = hook.deliveries.length;
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.consumers.delete(cluster.stream, consumerName("con_hook"));
    } finally {
      await nc.close();
    }
    await send("after-rm", 30);
    // Their pulls go unanswered: each read then asks for the consumer (after its wait + 5 s).
    await waitFor(() => deliveredIds("after-rm").size === 30, {
      timeoutMs: 40_000,
      what: () => `30 delivered after the rm (got ${deliveredIds("after-rm").size})`,
    });
    const again = hook.deliveries.slice(sentBefore).flatMap((d) => d.ids);
    expect(again.filter((id) => !id.startsWith("after-rm"))).toEqual([]);
    expect(cluster.output(0) + cluster.output(1) + cluster.output(2)).toContain(
      "was gone from the server",
    );
  }, 90_000);

  test("dead letters are shared: batches refused on whichever instance are listed by sluice deadletters from any instance's config", async () => {
    for (let n = 0; n < 3; n++) {
      const batch = Array.from({ length: 5 }, (_, k) => ({
        type: "track",
        messageId: `dead-${n * 5 + k}`,
        userId: "u1",
        event: "Refused",
      }));
      expect((await cluster.batch(n, cluster.keys.server, batch)).status).toBe(200);
    }
    const listed = async (i: number) => {
      const res = await runCli([
        "deadletters",
        "list",
        "--connection",
        "con_bad",
        "--json",
        "--config",
        cluster.configFile(i),
      ]);
      expect(res.code).toBe(0);
      const letters = JSON.parse(res.stdout) as { events: { messageId: string }[] }[];
      return letters.flatMap((l) => l.events.map((e) => e.messageId)).sort();
    };
    const all = Array.from({ length: 15 }, (_, n) => `dead-${n}`).sort();
    await waitFor(async () => (await listed(0)).length === 15, {
      timeoutMs: 30_000,
      what: "15 events dead-lettered",
    });
    for (const i of [0, 1, 2]) expect(await listed(i)).toEqual(all);
    // sluice connections: the backlog from the stream's consumer, the letters from Redis.
    const report = async () => {
      const res = await runCli(["connections", "--json", "--config", cluster.configFile(2)]);
      expect(res.code).toBe(0);
      return JSON.parse(res.stdout) as {
        id: string;
        started?: boolean;
        lagEvents: number;
        deadLetters: number;
      }[];
    };
    const bad = await waitFor(
      async () => (await report()).find((r) => r.id === "con_bad" && r.lagEvents === 0),
      { timeoutMs: 15_000, what: "con_bad caught up" },
    );
    expect(bad).toMatchObject({ started: true, lagEvents: 0, deadLetters: 15 });
  }, 60_000);

  test("an instance killed -9 while its batch waits on the destination: the others deliver its events after ack_wait; the same events in a batch carry the same Idempotency-Key on any instance", async () => {
    hook.hold(true);
    await send("crash", 10);
    const first = await waitFor(() => hook.held[0]?.delivery, {
      timeoutMs: 15_000,
      what: "a batch held at the destination",
    });
    const victim = Number(first.instance);
    await cluster.kill(victim);
    hook.hold(false);
    await waitFor(() => deliveredIds("crash").size === 10, {
      timeoutMs: 30_000,
      what: () => `10 delivered after the kill (got ${deliveredIds("crash").size})`,
    });
    const after = hook.deliveries.filter((d) => d.ids.some((id) => id.startsWith("crash")));
    // Nothing from the dead instance was accepted; its events came from the others.
    expect(after.every((d) => d.instance !== String(victim))).toBe(true);
    const delivered = new Set(after.flatMap((d) => d.ids));
    expect(first.ids.every((id) => delivered.has(id))).toBe(true);
    // The key follows the events, not the instance: a batch of the same events (the
    // redelivered batch, when the survivor read it whole) has the held batch's key, and
    // batches of other events have other keys. (When the server splits a redelivery
    // between two survivors the batches, and so their keys, differ: README.)
    for (const d of after) {
      expect(d.key === first.key).toBe(d.ids.join(",") === first.ids.join(","));
    }
    await cluster.restart(victim);
  }, 60_000);

  test("NATS down: the backlog asked every second and at each scrape fails; one warning per connection when it starts, one info line when it is known again; /ready 503 meanwhile", async () => {
    const connections = ["con_hook", "con_bad"];
    const instances = [0, 1, 2];
    const UNKNOWN = "connection backlog unknown";
    const KNOWN = "connection backlog known again";
    /** Instance i's log lines with this message (prefix), for each connection. */
    const counts = (i: number, msg: string) => {
      const parsed = cluster
        .output(i)
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { msg: string; connectionId?: string })
        .filter((l) => l.msg.startsWith(msg));
      return connections.map((c) => parsed.filter((l) => l.connectionId === c).length);
    };
    const scrape = async (i: number) =>
      expect((await fetch(`${cluster.url(i)}/metrics`)).status).toBe(200);
    for (const i of instances) {
      await waitFor(async () => (await cluster.ready(i)) === 200, { what: `/ready 200 on ${i}` });
    }
    const before = instances.map((i) => [counts(i, UNKNOWN), counts(i, KNOWN)]);
    /** New lines of instance i since `before`: [unknown per connection, known again per connection]. */
    const since = (i: number) => {
      const [unknown, known] = before[i]!;
      return [
        counts(i, UNKNOWN).map((n, k) => n - unknown![k]!),
        counts(i, KNOWN).map((n, k) => n - known![k]!),
      ];
    };
    await nats.kill();
    for (const i of instances) {
      await waitFor(async () => (await cluster.ready(i)) === 503, {
        timeoutMs: 15_000,
        what: `/ready 503 on ${i} with NATS down`,
      });
      // Each scrape asks every connection's backlog again, as the timer does every second.
      for (let n = 0; n < 5; n++) await scrape(i);
      await waitFor(() => since(i)[0]!.every((n) => n >= 1), { what: `a warning on ${i}` });
    }
    await nats.start();
    for (const i of instances) {
      await waitFor(async () => (await cluster.ready(i)) === 200, {
        timeoutMs: 20_000,
        what: `/ready 200 on ${i} with NATS back`,
      });
      await waitFor(
        async () => {
          await scrape(i);
          return since(i)[1]!.every((n) => n >= 1);
        },
        { timeoutMs: 15_000, what: `backlog known again on ${i}` },
      );
      // Every line of the outage came before "known again": one warning, one info each.
      expect(since(i)).toEqual([
        [1, 1],
        [1, 1],
      ]);
    }
  }, 90_000);
});
