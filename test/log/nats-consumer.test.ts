import { afterAll, describe, expect, test } from "bun:test";
import { DeliverPolicy, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { consumerName, type NatsLogOptions } from "../../src/log/nats/nats-log.ts";
import {
  LogConsumerConflictError,
  type LogReader,
  type StreamRecord,
} from "../../src/log/stream.ts";
import { waitFor } from "../support/wait.ts";
import { natsMissing as missing, natsLogHarness, numbers, rec } from "./nats-harness.ts";

if (missing) console.warn(`NATS consumer tests skipped: ${missing}`);

/**
 * The durable consumer's acks and reads between instances sharing it (SPEC 9: acked
 * after the destination accepted), against a real nats-server.
 */
describe.skipIf(Boolean(missing))("NATS log consumer: commits, close, existing consumers", () => {
  let nc: NatsConnection | undefined;
  let jsm: JetStreamManager;
  // Registered first, so that it runs before the harness stops the server.
  afterAll(async () => {
    await nc?.close();
  });
  const harness = natsLogHarness("cons");
  const { options, openLog } = harness;
  const start = async () => {
    const server = await harness.start();
    nc ??= await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
  };
  const info = (opts: NatsLogOptions, name: string) =>
    jsm.consumers.info(opts.stream, consumerName(name));

  test("commit acks what read returned up to the cursor, in that order: a redelivery with a lower sequence that came meanwhile is not acked, and is read next", async () => {
    await start();
    const opts = options();
    const writer = await openLog(opts);
    await writer.append([rec(1), rec(2), rec(3), rec(4)]);
    const other = await (await openLog(opts)).consumer("c", { start: "oldest" });
    const mine = await (await openLog(opts)).consumer("c", { start: "oldest" });
    expect(numbers(await other.read(2))).toEqual([1, 2]);
    const batch = await mine.read(10);
    expect(numbers(batch)).toEqual([3, 4]);
    // The delivery loop's waiting read, left out while it posts its batch (3, 4) …
    const pending = mine.read(10, 10_000);
    // … gets 1 and 2 back from an instance that shuts down (it naks them).
    await other.close();
    const redelivered = [...(await pending)];
    await waitFor(
      async () => {
        if (redelivered.length < 2) redelivered.push(...(await mine.read(10, 500)));
        return redelivered.length >= 2;
      },
      { what: "1 and 2 redelivered" },
    );
    expect(numbers(redelivered)).toEqual([1, 2]);
    // The batch is delivered: its commit acks 3 and 4 only.
    await mine.commit(batch.at(-1)!.cursor);
    const after = await info(opts, "c");
    expect(after.num_ack_pending).toBe(2);
    expect(after.ack_floor.stream_seq).toBe(0);
    // Read next, and acked by their own commit.
    await mine.commit(redelivered.at(-1)!.cursor);
    expect(await mine.lag()).toBe(0);
  });

  test("a waiting read that gets a message after close gives it back at once: another reader of the name gets it (not held until ack_wait)", async () => {
    await start();
    const opts = options(); // ack_wait 30 s
    const writer = await openLog(opts);
    const closing = await (await openLog(opts)).consumer("c", { start: "oldest" });
    const waiting = closing.read(10, 10_000);
    await waitFor(async () => (await info(opts, "c")).num_waiting >= 1, {
      what: "the waiting pull at the server",
    });
    const closed = closing.close();
    await writer.append([rec(1)]);
    expect(await waiting).toEqual([]);
    await closed;
    const next = await writer.consumer("c", { start: "oldest" });
    const got = await waitFor(async () => numbers(await next.read(10, 500)).join(","), {
      timeoutMs: 10_000,
      what: "the message given back by the closed reader",
    });
    expect(got).toBe("1");
  });

  test("an existing consumer: another ack_wait or max_ack_pending is updated; another source is refused, naming the consumer, and its filter is kept", async () => {
    await start();
    const opts = options();
    const first = await openLog(opts);
    const c = await first.consumer("conn.x", { start: "oldest", sourceId: "web" });
    await first.append([rec(1), rec(2, "app")]);
    expect(numbers(await c.read(10))).toEqual([1]);
    const changed = await openLog({ ...opts, ackWaitMs: 7_000, maxAckPending: 50 });
    await changed.consumer("conn.x", { start: "oldest", sourceId: "web" });
    let now = await info(opts, "conn.x");
    expect(now.config.ack_wait).toBe(7_000_000_000);
    expect(now.config.max_ack_pending).toBe(50);
    const refused = await changed.consumer("conn.x", { start: "oldest", sourceId: "app" }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(LogConsumerConflictError);
    const message = (refused as Error).message;
    expect(message).toContain(consumerName("conn.x"));
    expect(message).toContain(`${opts.subjectPrefix}.web`);
    expect(message).toContain(`${opts.subjectPrefix}.app`);
    now = await info(opts, "conn.x");
    expect(now.config.filter_subject).toBe(`${opts.subjectPrefix}.web`);
    // Every source (no filter) is another filter too.
    const all = await changed.consumer("conn.x", { start: "oldest" }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(all).toBeInstanceOf(LogConsumerConflictError);
  });

  /** Reads (waiting up to 500 ms each) until `n` records came, or the timeout. */
  const readUntil = async (c: LogReader, n: number) => {
    const got: StreamRecord[] = [];
    await waitFor(
      async () => {
        got.push(...(await c.read(10, 500)));
        return got.length >= n;
      },
      { timeoutMs: 25_000, what: `${n} records` },
    );
    return got;
  };

  test("a durable consumer the server lost (nats consumer rm): its pulls go unanswered, so it is made again after the ack floor last seen, and what it held unacked comes again", async () => {
    await start();
    const opts = options();
    const writer = await openLog(opts);
    await writer.append([rec(1), rec(2), rec(3), rec(4)]);
    const log = await openLog(opts);
    const c = await log.consumer("gone", { start: "oldest" });
    const first = await c.read(2);
    expect(numbers(first)).toEqual([1, 2]);
    await c.commit(first.at(-1)!.cursor);
    // What delivery asks every second: the consumer's ack floor (2) is seen.
    await log.backlog("gone");
    // Read, not committed: the destination had not accepted it yet.
    const held = await c.read(1);
    expect(numbers(held)).toEqual([3]);
    await jsm.consumers.delete(opts.stream, consumerName("gone"));
    await writer.append([rec(5)]);
    // Not 1 and 2 again (committed), nor 3 lost (read, never acked).
    expect(numbers(await readUntil(c, 3))).toEqual([3, 4, 5]);
    // The old consumer's message is not acked by a commit (it is read again above).
    await c.commit(held[0]!.cursor);
    const now = await info(opts, "gone");
    expect(now.config.deliver_policy).toBe(DeliverPolicy.StartSequence);
    expect(now.config.opt_start_seq).toBe(3);
  });

  test("a durable consumer that starts at now, lost before it acked anything: made again where it started, so what came meanwhile is not skipped", async () => {
    await start();
    const opts = options();
    const writer = await openLog(opts);
    await writer.append([rec(1), rec(2)]);
    const c = await (await openLog(opts)).consumer("fresh", { start: "now" });
    await writer.append([rec(3)]);
    await jsm.consumers.delete(opts.stream, consumerName("fresh"));
    await writer.append([rec(4)]);
    expect(numbers(await readUntil(c, 2))).toEqual([3, 4]);
  });

  test("a durable consumer another instance made again meanwhile is used as it is (its ack floor kept)", async () => {
    await start();
    const opts = options();
    const writer = await openLog(opts);
    await writer.append([rec(1), rec(2), rec(3)]);
    const c = await (await openLog(opts)).consumer("again", { start: "oldest" });
    expect(numbers(await c.read(1))).toEqual([1]);
    await jsm.consumers.delete(opts.stream, consumerName("again"));
    // Made again by another instance, which read and committed 1 and 2.
    const other = await (await openLog(opts)).consumer("again", { start: "oldest" });
    const two = await other.read(2);
    await other.commit(two.at(-1)!.cursor);
    expect(numbers(await readUntil(c, 1))).toEqual([3]);
  });

  test("a reader the server lost (idle past its inactive threshold) goes on after the last record it returned", async () => {
    await start();
    const opts = options();
    const writer = await openLog(opts);
    await writer.append([rec(1), rec(2)]);
    const reader = await writer.reader({ start: "oldest" });
    expect(numbers(await reader.read(10))).toEqual([1, 2]);
    const names = (await jsm.consumers.list(opts.stream).next()).map((c) => c.name);
    expect(names).toHaveLength(1);
    await jsm.consumers.delete(opts.stream, names[0]!);
    await writer.append([rec(3)]);
    // A read without waiting (replays, `log tail`) finds it too, not an early end.
    expect(numbers(await reader.read(10, 0))).toEqual([3]);
    await reader.close();
  });
});
