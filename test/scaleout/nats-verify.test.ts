import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, headers } from "@nats-io/transport-node";
import { natsMsgId } from "../../src/log/nats/nats-log.ts";
import { runCli } from "../support/server.ts";
import { type Cluster, startCluster } from "./cluster.ts";
import { serversMissing } from "./fixtures.ts";
import {
  type NatsServerProcess,
  type ServerProcess,
  startNatsServer,
  startRedisServer,
} from "./servers.ts";

/** `sluice log verify` with `log.backend: nats`: every message of the stream checked. */
describe.skipIf(Boolean(serversMissing))("sluice log verify on a NATS stream", () => {
  let nats: NatsServerProcess;
  let redis: ServerProcess;
  let cluster: Cluster;

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    cluster = await startCluster({ size: 1, nats, redis, name: "verify" });
  }, 60_000);

  afterAll(async () => {
    await cluster?.cleanup();
    await Promise.all([nats?.cleanup(), redis?.cleanup()]);
  });

  const verify = () => runCli(["log", "verify", "--config", cluster.configFile(0)]);

  test("events stored by sluice pass (a messageId that is hashed into Nats-Msg-Id too); messages published by hand are named with their sequence and why, exit 1", async () => {
    const batch = [
      ...Array.from({ length: 5 }, (_, n) => ({
        type: "track",
        event: "e",
        userId: "u",
        messageId: `v-${n}`,
      })),
      { type: "identify", userId: "u", messageId: " spaced id\t" },
    ];
    expect((await cluster.batch(0, cluster.keys.server, batch)).status).toBe(200);
    const sound = await verify();
    expect(sound.stderr).toBe("");
    expect(sound.stdout).toMatch(
      new RegExp(`^stream ${cluster.stream}: 6 message\\(s\\), \\d+ bytes: ok\\n$`),
    );
    expect(sound.code).toBe(0);

    const nc = await connect({ servers: nats.url });
    try {
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      const stored = await jsm.streams.getMessage(cluster.stream, { seq: 1 });
      const event = stored!.json<Record<string, unknown>>();
      const subject = `${cluster.subjectPrefix}.web`;
      const h = (type: string | undefined, msgId: string | undefined) => {
        const hs = headers();
        if (type !== undefined) hs.set("Sluice-Type", type);
        if (msgId !== undefined) hs.set("Nats-Msg-Id", msgId);
        return hs;
      };
      const publish = (subj: string, body: string, hs: ReturnType<typeof headers>) =>
        js.publish(subj, body, { headers: hs });
      const good = (id: string) => ({ ...event, messageId: id });
      // 7: not JSON.
      await publish(subject, "{not json", h("track", "web:bad-1"));
      // 8: another source's event on web's subject.
      await publish(
        subject,
        JSON.stringify({ ...good("bad-2"), sourceId: "other" }),
        h("track", "other:bad-2"),
      );
      // 9: a Nats-Msg-Id that is not the event's.
      await publish(subject, JSON.stringify(good("bad-3")), h("track", "web:something-else"));
      // 10: no Sluice-Type header.
      await publish(
        subject,
        JSON.stringify(good("bad-4")),
        h(undefined, natsMsgId("web", "bad-4")),
      );
      // 11: sound, by hand.
      await publish(subject, JSON.stringify(good("ok-5")), h("track", natsMsgId("web", "ok-5")));
    } finally {
      await nc.close();
    }
    const bad = await verify();
    expect(bad.code).toBe(1);
    const lines = bad.stderr.trim().split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe(`stream ${cluster.stream} seq 7: payload is not JSON`);
    expect(lines[1]).toStartWith(`stream ${cluster.stream} seq 8: sourceId "other" does not match`);
    expect(lines[2]).toStartWith(
      `stream ${cluster.stream} seq 9: Nats-Msg-Id "web:something-else"`,
    );
    expect(lines[3]).toBe(`stream ${cluster.stream} seq 10: no Sluice-Type header`);
    expect(bad.stdout).toMatch(/: 11 message\(s\), \d+ bytes: 4 bad\n$/);
  }, 60_000);
});
