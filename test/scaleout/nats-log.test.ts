import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { connect, nanos } from "@nats-io/transport-node";
import { NatsLogStream } from "../../src/log/nats/nats-log.ts";
import type { AppendRecord } from "../../src/log/stream.ts";
import { StorageUnavailableError } from "../../src/storage/unavailable.ts";
import { memoryLogger } from "../support/logger.ts";
import { waitFor } from "../support/wait.ts";
import { serversMissing } from "./fixtures.ts";
import { type NatsServerProcess, startNatsServer } from "./servers.ts";

const encoder = new TextEncoder();
const rec = (messageId: string, sourceId = "web"): AppendRecord => ({
  sourceId,
  type: "track",
  messageId,
  payload: encoder.encode(JSON.stringify({ messageId, sourceId })),
});

/**
 * The NATS log's own behaviour beyond the contract suite: it opens without NATS and
 * becomes ready when NATS comes, fails appends at once (never hangs) while NATS is
 * gone and recovers without being reopened, stores a `Nats-Msg-Id` once, and says
 * clearly when an existing stream differs from what it would create.
 */
describe.skipIf(Boolean(serversMissing))("NATS log: availability and stream checks", () => {
  let nats: NatsServerProcess;
  const open: NatsLogStream[] = [];
  let n = 0;
  const options = (extra: Record<string, unknown> = {}) => {
    const i = n++;
    return {
      servers: [nats.url],
      stream: `AVAIL_${i}`,
      subjectPrefix: `avail${i}.events`,
      ...extra,
    };
  };
  const track = async (opts: Parameters<typeof NatsLogStream.open>[0]) => {
    const log = await NatsLogStream.open(opts);
    open.push(log);
    return log;
  };

  beforeAll(async () => {
    nats = await startNatsServer();
  }, 30_000);
  afterEach(async () => {
    for (const log of open.splice(0)) await log.close();
    if (!nats.running) await nats.start();
  });
  afterAll(async () => {
    await nats?.cleanup();
  });

  test("opened while NATS is down: returns (not ready), appends fail at once; ready and storing once NATS comes", async () => {
    await nats.stop();
    const { logger, lines } = memoryLogger();
    const started = Date.now();
    const log = await track(options({ logger, openWaitMs: 300 }));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(log.healthy()).toBe(false);
    expect(log.health().error).toContain(`127.0.0.1:${nats.port}`);
    // A consumer can be opened meanwhile; it reads nothing until NATS is there.
    const consumer = await log.consumer("early", { start: "oldest" });
    expect(await consumer.read(10, 50)).toEqual([]);
    const failing = Date.now();
    await expect(log.append([rec("down-1")])).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(Date.now() - failing).toBeLessThan(500);
    expect(lines.some((l) => String(l.msg).startsWith("nats unusable"))).toBe(true);

    await nats.start();
    await waitFor(() => log.healthy(), { timeoutMs: 15_000, what: "ready after NATS started" });
    const [cursor] = await log.append([rec("up-1")]);
    expect(cursor).toBeDefined();
    const read = await consumer.read(10, 2_000);
    expect(read.map((r) => r.cursor)).toEqual([cursor!]);
    await consumer.commit(cursor!);
  }, 40_000);

  test("NATS killed: not ready and appends refused within seconds; back on the same store: ready again, records kept, without reopening", async () => {
    const { logger, lines } = memoryLogger();
    const log = await track(options({ logger }));
    expect(log.healthy()).toBe(true);
    const before = await log.append([rec("a"), rec("b")]);
    await nats.kill();
    await waitFor(() => !log.healthy(), { timeoutMs: 10_000, what: "not ready after kill" });
    await expect(log.append([rec("c")])).rejects.toBeInstanceOf(StorageUnavailableError);
    await nats.start();
    await waitFor(() => log.healthy(), { timeoutMs: 15_000, what: "ready after restart" });
    expect(lines.some((l) => l.msg === "nats reachable again")).toBe(true);
    const after = await log.append([rec("c")]);
    const consumer = await log.consumer("all", { start: "oldest" });
    const read = await consumer.read(10, 2_000);
    expect(read.map((r) => r.cursor)).toEqual([...before, ...after]);
  }, 40_000);

  test("the same sourceId:messageId appended twice (one call or two) is stored once: the duplicate gets the first cursor", async () => {
    const log = await track(options());
    const [first] = await log.append([rec("same")]);
    const again = await log.append([rec("same"), rec("other"), rec("same", "app")]);
    expect(again[0]).toBe(first!);
    expect(new Set(again).size).toBe(3);
    const consumer = await log.consumer("all", { start: "oldest" });
    expect(await consumer.read(10, 1_000)).toHaveLength(3);
  });

  test("a consumer shared by two instances: a held batch stays with its live reader past ack_wait; a reader that dies gives it to the other after ack_wait, in order", async () => {
    const opts = options({ ackWaitMs: 1_000 });
    const a = await track(opts);
    const b = await track(opts);
    const appended = await a.append([rec("h-1"), rec("h-2"), rec("h-3")]);
    const ca = await a.consumer("shared", { start: "oldest" });
    const cb = await b.consumer("shared", { start: "oldest" });
    const held = await ca.read(10, 2_000);
    expect(held.map((r) => r.cursor)).toEqual(appended);
    // Three times ack_wait: the live reader keeps them ("still working").
    const started = Date.now();
    while (Date.now() - started < 3_000) expect(await cb.read(10, 500)).toEqual([]);
    // A reader dying (its connection gone, nothing nak'ed or acked): the other gets
    // them once ack_wait has passed.
    await a.use().nc.close();
    const again = await waitFor(
      async () => {
        const got = await cb.read(10, 1_000);
        return got.length > 0 ? got : undefined;
      },
      { timeoutMs: 10_000, what: "redelivery to the other instance" },
    );
    expect(again.map((r) => r.cursor)).toEqual(appended);
    await cb.commit(again.at(-1)!.cursor);
    expect(await cb.lag()).toBe(0);
  }, 30_000);

  test("an existing stream with other settings: differences logged by name; one sluice cannot publish to is not ready, with the reason", async () => {
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    const usable = options({ replicas: 1 });
    await jsm.streams.add({
      name: usable.stream,
      subjects: [`${usable.subjectPrefix}.>`],
      storage: StorageType.Memory,
      retention: RetentionPolicy.Limits,
      duplicate_window: nanos(30_000),
    });
    const unusable = options();
    await jsm.streams.add({
      name: unusable.stream,
      subjects: ["elsewhere.>"],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
    });
    await nc.close();

    const first = memoryLogger();
    const log = await track({ ...usable, logger: first.logger });
    expect(log.healthy()).toBe(true);
    const said = first.lines.find((l) => String(l.msg).includes("differs from sluice's"));
    expect(String(said?.msg)).toContain('storage is "memory"');
    expect(String(said?.msg)).toContain("duplicate_window is 30 s, under 2 minutes");
    expect(String(said?.msg)).toContain("used as it is");
    expect((await log.append([rec("x")])).length).toBe(1);

    const second = memoryLogger();
    const bad = await track({ ...unusable, logger: second.logger, openWaitMs: 500 });
    expect(bad.healthy()).toBe(false);
    expect(bad.health().error).toContain(`subjects are ["elsewhere.>"]`);
    expect(
      second.lines.some((l) => String(l.msg).includes("not usable: fix or delete the stream")),
    ).toBe(true);
    await expect(bad.append([rec("y")])).rejects.toBeInstanceOf(StorageUnavailableError);
  }, 30_000);
});
