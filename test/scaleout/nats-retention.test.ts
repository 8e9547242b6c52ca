import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type Receiver, startReceiver } from "../delivery/receiver.ts";
import { waitFor } from "../support/wait.ts";
import { type Cluster, startCluster } from "./cluster.ts";
import { serversMissing } from "./fixtures.ts";
import {
  type NatsServerProcess,
  type ServerProcess,
  startNatsServer,
  startRedisServer,
} from "./servers.ts";

/**
 * Retention with `log.backend: nats` (SPEC 5, 9): every instance runs it; the stream
 * keeps what a connection has not acked, the connection shows as holding retention
 * back (`sluice_connection_retention_held`), and once it caught up the stream is cut.
 */
describe.skipIf(Boolean(serversMissing))(
  "retention on a NATS stream shared by two instances",
  () => {
    let nats: NatsServerProcess;
    let redis: ServerProcess;
    let cluster: Cluster;
    let receiver: Receiver;

    beforeAll(async () => {
      [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
      receiver = startReceiver(Array(100_000).fill(500)); // down for now
      cluster = await startCluster({
        size: 2,
        nats,
        redis,
        name: "retain",
        log: { retention: { maxAgeHours: 1000, maxBytes: 0, intervalSeconds: 0.2 } },
        config: () => ({
          connections: [
            {
              id: "con_hook",
              source: "web",
              destination: {
                type: "webhook",
                url: receiver.url,
                batchSize: 50,
                maxWaitMs: 10,
                retryBaseMs: 10,
                retryMaxDelayMs: 50,
                maxAttempts: 1_000_000,
              },
            },
          ],
        }),
      });
    }, 60_000);

    afterAll(async () => {
      await cluster?.cleanup();
      receiver?.stop();
      await Promise.all([nats?.cleanup(), redis?.cleanup()]);
    });

    const held = 'sluice_connection_retention_held{connection="con_hook"}';
    const metrics = async (i: number) => (await fetch(`${cluster.url(i)}/metrics`)).text();
    async function messages(): Promise<number> {
      const nc = await connect({ servers: nats.url });
      try {
        return (await (await jetstreamManager(nc)).streams.info(cluster.stream)).state.messages;
      } finally {
        await nc.close();
      }
    }

    test("a connection behind holds the stream (reported on every instance); caught up, the stream is cut", async () => {
      const batch = Array.from({ length: 20 }, (_, n) => ({
        type: "track",
        event: "e",
        userId: "u",
        messageId: `ret-${n}`,
      }));
      expect((await cluster.batch(0, cluster.keys.server, batch)).status).toBe(200);
      for (const i of [0, 1]) {
        await waitFor(async () => (await metrics(i)).includes(`${held} 1\n`), {
          timeoutMs: 15_000,
          what: `instance ${i} reports con_hook holding retention back`,
        });
      }
      expect(await messages()).toBe(20);
      expect(cluster.output(0) + cluster.output(1)).toContain(
        "retention: records kept because a connection has not consumed them yet",
      );
      receiver.script.length = 0; // the receiver is back
      await receiver.waitFor(20, 20_000);
      await waitFor(async () => (await messages()) === 0, {
        timeoutMs: 15_000,
        what: "the stream cut once con_hook acked everything",
      });
      for (const i of [0, 1]) {
        await waitFor(async () => (await metrics(i)).includes(`${held} 0\n`), {
          timeoutMs: 15_000,
          what: `instance ${i} reports nothing held`,
        });
      }
      expect(new Set(receiver.delivered().map((e) => e.messageId)).size).toBe(20);
    }, 90_000);
  },
);
