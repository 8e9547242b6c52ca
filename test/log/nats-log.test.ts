import { describe, expect, test } from "bun:test";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { consumerName, NatsLogStream, natsMsgId } from "../../src/log/nats/nats-log.ts";
import type { AppendRecord } from "../../src/log/stream.ts";
import { isUnavailable } from "../../src/storage/unavailable.ts";
import { waitFor } from "../support/wait.ts";
import { natsMissing as missing, natsLogHarness, numbers, rec } from "./nats-harness.ts";

if (missing) console.warn(`NATS event log tests skipped: ${missing}`);

describe.skipIf(Boolean(missing))("NATS JetStream event log", () => {
  const { start, options, openLog } = natsLogHarness("log");

  test("the stream is created if missing: file storage, a subject per source, a 2 minute duplicate window", async () => {
    const server = await start();
    const opts = options({ stream: "SLUICE_SPEC", subjectPrefix: "sluice.events" });
    await openLog(opts);
    await openLog(opts); // a second instance finds it
    const nc = await connect({ servers: server.url });
    try {
      const info = await (await jetstreamManager(nc)).streams.info("SLUICE_SPEC");
      expect(info.config.subjects).toEqual(["sluice.events.>"]);
      expect(info.config.storage).toBe(StorageType.File);
      expect(info.config.duplicate_window).toBe(120_000_000_000);
    } finally {
      await nc.close();
    }
  });

  test("the same sourceId:messageId within the window is stored once (Nats-Msg-Id)", async () => {
    await start();
    const log = await openLog(options());
    const first = await log.append([rec(1), rec(2)]);
    const again = await log.append([rec(1), rec(3), rec(1, "app")]);
    expect(again[0]).toBe(first[0]!);
    expect(new Set([...first, ...again]).size).toBe(4);
    const c = await log.consumer("all", { start: "oldest" });
    const read = await c.read(10);
    expect(read.map((r) => [r.sourceId, numbers([r])[0]])).toEqual([
      ["web", 1],
      ["web", 2],
      ["web", 3],
      ["app", 1],
    ]);
  });

  test("any messageId a client may send is its own Nats-Msg-Id: spaces at the ends, CR/LF, unicode", async () => {
    await start();
    const log = await openLog(options());
    const ids = [
      "a",
      " a",
      "a ",
      "x\r\ny",
      "\u00e9v\u00e9nement",
      "__proto__",
      "web#1",
      "x".repeat(100),
    ];
    const one = (messageId: string, n: number): AppendRecord => ({ ...rec(n), messageId });
    const first = await log.append(ids.map(one));
    expect(new Set(first).size).toBe(ids.length);
    // Sent again: each one is the same message as before (the stream's window), not a new one.
    const again = await log.append(ids.map((id, n) => one(id, n + 100)));
    expect(again).toEqual(first);
    const read = await (await log.consumer("all", { start: "oldest" })).read(50);
    expect(numbers(read)).toEqual(ids.map((_, n) => n));
    // The two forms never meet: a plain id cannot spell a hashed one.
    expect(natsMsgId("web", " a")).toMatch(/^web#[0-9a-f]{64}$/);
    expect(natsMsgId("web", "a")).toBe("web:a");
  });

  test("instances sharing a consumer name split the records: each read by exactly one", async () => {
    await start();
    const opts = options();
    const writer = await openLog(opts);
    await writer.append(Array.from({ length: 200 }, (_, n) => rec(n)));
    const readers = await Promise.all(
      [0, 1, 2].map(async () =>
        (await openLog(opts)).consumer("conn.shared_1", { start: "oldest" }),
      ),
    );
    const seen: number[][] = [[], [], []];
    await Promise.all(
      readers.map(async (c, i) => {
        for (;;) {
          const batch = await c.read(7);
          if (batch.length === 0) return;
          seen[i]!.push(...numbers(batch));
          await c.commit(batch.at(-1)!.cursor);
        }
      }),
    );
    const all = seen.flat().sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 200 }, (_, n) => n));
    expect(await readers[0]!.lag()).toBe(0);
    // Names the server would refuse (`.`) map to distinct valid ones.
    expect(consumerName("conn.shared_1")).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(consumerName("a.b")).not.toBe(consumerName("a_b"));
  });

  test("records a dead reader held go to another after ack_wait", async () => {
    await start();
    const opts = options({ ackWaitMs: 1000 });
    const writer = await openLog(opts);
    await writer.append([rec(1), rec(2), rec(3)]);
    const dying = await NatsLogStream.open(opts);
    const held = await (await dying.consumer("d", { start: "oldest" })).read(10);
    expect(numbers(held)).toEqual([1, 2, 3]);
    // Dies without closing its consumer (no nak): only ack_wait gives the records back.
    await (dying as unknown as { link: { nc: { close(): Promise<void> } } }).link.nc.close();
    const other = await writer.consumer("d", { start: "oldest" });
    // ack_wait ends per record: the redeliveries may come in more than one read.
    const got: number[] = [];
    await waitFor(
      async () => {
        got.push(...numbers(await other.read(10, 1000)));
        return got.length >= 3;
      },
      { timeoutMs: 15_000, what: () => `redelivery after ack_wait (got ${got.join(",")})` },
    );
    expect(got.sort((a, b) => a - b)).toEqual([1, 2, 3]);
  });

  test("NATS down: appends fail as unavailable, healthy() is false; back: appends work, records kept", async () => {
    const s = await start();
    const log = await openLog(options({ publishTimeoutMs: 1000 }));
    await log.append([rec(1)]);
    await s.stop();
    await waitFor(() => !log.healthy(), { what: "healthy() false after the server stopped" });
    const failed = await log.append([rec(2)]).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isUnavailable(failed)).toBe(true);
    await s.start();
    await waitFor(() => log.healthy(), { timeoutMs: 20_000, what: "reconnect" });
    await waitFor(
      () =>
        log.append([rec(3)]).then(
          () => true,
          () => false,
        ),
      {
        timeoutMs: 20_000,
        what: "an append succeeds again",
      },
    );
    const c = await log.consumer("after-outage", { start: "oldest" });
    expect(numbers(await c.read(10))).toEqual([1, 3]);
  });

  test("a consumer or reader the server refuses is closed, not kept by the log", async () => {
    await start();
    const log = await openLog(options());
    const open = () => (log as unknown as { consumers: Set<unknown> }).consumers.size;
    await log.consumer("con_x", { start: "oldest", sourceId: "web" });
    expect(open()).toBe(1);
    // Another source for the same consumer: refused by ensure().
    await expect(log.consumer("con_x", { start: "oldest", sourceId: "app" })).rejects.toThrow();
    expect(open()).toBe(1);
    // A reader the server refuses (a source name no subject may hold).
    await expect(log.reader({ start: "oldest", sourceId: "a b" })).rejects.toThrow();
    expect(open()).toBe(1);
  });
});
