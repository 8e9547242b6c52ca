import { afterAll, describe, expect, test } from "bun:test";
import { runCli } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";
import { type Cluster, startCluster } from "./cluster.ts";
import { fileServers, serversMissing } from "./fixtures.ts";

/**
 * `sluice replay` with `log.backend: nats` reads the stream (the events are not in the
 * data dir's file log): a time range and a stream-sequence range re-send the events
 * stored there, through the connection's destination.
 */
describe.skipIf(Boolean(serversMissing))("sluice replay on the NATS log", () => {
  const servers = fileServers();
  const received: { ids: string[] }[] = [];
  const hook = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const batch = (await req.json()) as { messageId: string }[];
      received.push({
        ids: batch.map((e) => e.messageId),
      });
      return new Response("ok");
    },
  });
  let cluster: Cluster | undefined;
  afterAll(async () => {
    await cluster?.cleanup();
    hook.stop(true);
  });
  const ids = (prefix: string) =>
    received.flatMap((r) => r.ids).filter((id) => id.startsWith(prefix));

  test("a time range and a sequence range replay the stream's events; the local data dir has none", async () => {
    const [nats, redis] = await Promise.all([servers.nats(), servers.redis()]);
    cluster = await startCluster({
      size: 1,
      nats,
      redis,
      name: "replay",
      config: () => ({
        connections: [
          {
            id: "con_hook",
            source: "web",
            destination: {
              type: "webhook",
              url: `http://127.0.0.1:${hook.port}/hook`,
              batchSize: 10,
              maxWaitMs: 50,
            },
          },
        ],
      }),
    });
    const from = new Date(Date.now() - 1000).toISOString();
    const batch = Array.from({ length: 6 }, (_, i) => ({
      type: "track",
      messageId: `rp-${i}`,
      userId: "u1",
      event: "Replay",
    }));
    expect((await cluster.batch(0, cluster.keys.server, batch)).status).toBe(200);
    // Events of another source in between: not replayed through con_hook.
    expect((await cluster.track(0, cluster.keys.other, "other-1")).status).toBe(200);
    await waitFor(() => ids("rp-").length === 6, { what: "the first delivery" });

    const replay = (...args: string[]) =>
      runCli(["replay", "--connection", "con_hook", ...args, "--config", cluster!.configFile(0)]);
    const all = await replay("--from", from);
    expect({ out: all.stdout, err: all.stderr }).toMatchObject({
      out: expect.stringContaining("replayed 6 of 6 event(s)"),
    });
    expect(all.code).toBe(0);
    expect(ids("rp-")).toHaveLength(12);
    expect(received.at(-1)!.ids).toEqual(batch.map((e) => e.messageId));

    // A range of stream sequence numbers: after the 2nd message up to the one before the 5th.
    const stored = await cluster.stored();
    expect(stored.slice(0, 6).map((m) => m.messageId)).toEqual(batch.map((e) => e.messageId));
    const part = await replay("--from", "2", "--to", "5");
    expect(part.stdout).toContain("replayed 3 of 3 event(s)");
    expect(part.code).toBe(0);
    expect(received.at(-1)!.ids).toEqual(["rp-2", "rp-3", "rp-4"]);

    // A file-log position means nothing here: refused as usage (exit 2).
    const bad = await replay("--from", "1:0");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("stream sequence number");
  }, 120_000);
});
