import { describe, expect, test } from "bun:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { parseConfig } from "../../src/config/load.ts";
import { consumerName, type NatsLogStream } from "../../src/log/nats/nats-log.ts";
import { natsLogOptions } from "../../src/log/nats/options.ts";
import {
  ConsumersUnknownError,
  deleteRange,
  purgeKeepsPending,
  retainStream,
} from "../../src/log/nats/retention.ts";
import type { LogConsumer, StreamRecord } from "../../src/log/stream.ts";
import { waitFor } from "../support/wait.ts";
import { natsMissing as missing, natsLogHarness, numbers, rec } from "./nats-harness.ts";

if (missing) console.warn(`NATS retention tests skipped: ${missing}`);

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const HOUR = 3_600_000;
/** Limits that keep everything: only the policy under test cuts. */
const roomy = { maxAgeMs: 1000 * HOUR, maxBytes: 1024 ** 4 };

/** Reads everything there is now (a few reads that wait briefly for the first record). */
async function drain(c: LogConsumer, max = 1000): Promise<StreamRecord[]> {
  const out: StreamRecord[] = [];
  for (;;) {
    const batch = await c.read(Math.min(100, max - out.length), 300);
    if (batch.length === 0 || out.length + batch.length >= max) return [...out, ...batch];
    out.push(...batch);
  }
}

test("purgeKeepsPending: a purge keeps unacked messages above its cut from nats-server 2.9.15 on", () => {
  expect(purgeKeepsPending("2.9.10")).toBe(false);
  expect(purgeKeepsPending("2.9.14")).toBe(false);
  expect(purgeKeepsPending("2.9.15")).toBe(true);
  expect(purgeKeepsPending("2.10.0")).toBe(true);
  expect(purgeKeepsPending("v2.12.1")).toBe(true);
  expect(purgeKeepsPending(undefined)).toBe(false);
});

test("log.retentionPurge: `never` deletes one by one whatever the server; `auto` decides by its version", () => {
  const purgeOf = (log: Record<string, unknown>) =>
    natsLogOptions(
      parseConfig({ sources: [], log: { backend: "nats", ...log } }, "/tmp/sluice.yaml", {}).config
        .log,
    ).purgeKeepsPending;
  expect(purgeOf({})).toBeUndefined();
  expect(purgeOf({ retentionPurge: "auto" })).toBeUndefined();
  expect(purgeOf({ retentionPurge: "never" })).toBe(false);
  expect(() => purgeOf({ retentionPurge: "always" })).toThrow();
});

// Each test runs twice: removing by purge (what servers from 2.9.15 on get) and one by
// one (what older ones get: Debian's 2.9.10 here). The purge is exercised only where no
// consumer holds an unacked message above the cut, which 2.9.10's purge would forget.
describe.skipIf(Boolean(missing))("NATS log retention", () => {
  const { start, options, openLog } = natsLogHarness("ret");

  async function stateOf(log: NatsLogStream, stream: string) {
    const { jsm } = log.use();
    return (await jsm.streams.info(stream)).state;
  }

  for (const purge of [true, false]) {
    const how = purge ? "purge" : "one-by-one deletes";

    test(`by age (${how}): messages stored before maxAge ago go, the later ones stay`, async () => {
      await start();
      const opts = options({ purgeKeepsPending: purge });
      const log = await openLog(opts);
      for (let n = 0; n < 37; n++) await log.append([rec(n)]);
      const { jsm } = log.use();
      const lastOld = (await jsm.streams.getMessage(opts.stream, { seq: 37 }))!.time.getTime();
      // The later ones are stored strictly after the last old one's millisecond.
      await waitFor(() => Date.now() > lastOld + 5);
      for (let n = 37; n < 60; n++) await log.append([rec(n)]);
      const c = await log.consumer("con_all", { start: "oldest", sourceId: "web" });
      await c.commit((await drain(c)).at(-1)!.cursor);
      const now = Date.now();
      const result = await log.retain({
        maxAgeMs: now - (lastOld + 1),
        maxBytes: roomy.maxBytes,
        consumers: ["con_all"],
        now,
      });
      expect(result).toEqual({ records: 37, holding: [] });
      const state = await stateOf(log, opts.stream);
      expect(state.first_seq).toBe(38);
      expect(state.messages).toBe(23);
      // Again: nothing more is that old.
      expect(
        (await log.retain({ ...roomy, maxAgeMs: now - (lastOld + 1), consumers: [], now })).records,
      ).toBe(0);
    });

    test(`by size (${how}): the oldest go until the stream is within maxBytes`, async () => {
      await start();
      const opts = options({ purgeKeepsPending: purge });
      const log = await openLog(opts);
      // Records of one size (two-digit numbers), so the average is exact.
      for (let n = 10; n < 50; n += 5) await log.append(range(n, n + 5).map((i) => rec(i)));
      const c = await log.consumer("con_all", { start: "oldest", sourceId: "web" });
      await c.commit((await drain(c)).at(-1)!.cursor);
      const before = await stateOf(log, opts.stream);
      const maxBytes = Math.floor(before.bytes / 4);
      const result = await log.retain({ ...roomy, maxBytes, consumers: ["con_all"] });
      expect(result).toEqual({ records: 30, holding: [] });
      const after = await stateOf(log, opts.stream);
      expect(after.bytes).toBeLessThanOrEqual(maxBytes);
      expect(after.messages).toBe(10);
      const reader = await log.reader({ start: "oldest" });
      expect(numbers(await reader.read(100, 500))).toEqual(range(40, 50));
      await reader.close();
    });

    test(`held back by a slow connection (${how}): cut at its ack floor, reported; cut further once it catches up`, async () => {
      await start();
      const opts = options({ purgeKeepsPending: purge });
      const log = await openLog(opts);
      await log.append(range(0, 20).map((n) => rec(n)));
      const fast = await log.consumer("con_fast", { start: "oldest", sourceId: "web" });
      await fast.commit((await drain(fast)).at(-1)!.cursor);
      const slow = await log.consumer("con.slow", { start: "oldest", sourceId: "web" });
      const first = await slow.read(5);
      await slow.commit(first[4]!.cursor);
      const everything = { ...roomy, maxBytes: 0, consumers: ["con_fast", "con.slow"] };
      expect(await log.retain(everything)).toEqual({ records: 5, holding: ["con.slow"] });
      expect((await stateOf(log, opts.stream)).first_seq).toBe(6);
      // Not one more while it stays there.
      expect(await log.retain(everything)).toEqual({ records: 0, holding: ["con.slow"] });
      const rest = await drain(slow);
      expect(numbers(rest)).toEqual(range(5, 20));
      await slow.commit(rest.at(-1)!.cursor);
      expect(await log.retain(everything)).toEqual({ records: 15, holding: [] });
      expect((await stateOf(log, opts.stream)).messages).toBe(0);
      // The stream goes on from there.
      await log.append([rec(20)]);
      expect(numbers(await drain(slow))).toEqual([20]);
      expect(numbers(await drain(fast))).toEqual([20]);
    });

    test(`a connection of a quiet source holds nothing back once it has acked all of its own (${how})`, async () => {
      await start();
      const opts = options({ purgeKeepsPending: purge });
      const log = await openLog(opts);
      await log.append([rec(0, "app"), ...range(1, 10).map((n) => rec(n))]);
      const app = await log.consumer("con_app", { start: "oldest", sourceId: "app" });
      await app.commit((await drain(app)).at(-1)!.cursor);
      const web = await log.consumer("con_web", { start: "oldest", sourceId: "web" });
      await web.commit((await drain(web)).at(-1)!.cursor);
      const result = await log.retain({ ...roomy, maxBytes: 0, consumers: ["con_app", "con_web"] });
      expect(result).toEqual({ records: 10, holding: [] });
    });
  }

  test("nothing a connection has not acked is removed: read and unacked, given back, another source's, an unnamed consumer's", async () => {
    await start();
    // One by one (what this server needs): its purge would forget the unacked reads.
    const opts = options({ purgeKeepsPending: false });
    const log = await openLog(opts);
    await log.append(range(0, 10).map((n) => rec(n)));
    await log.append(range(10, 15).map((n) => rec(n, "app")));
    await log.append(range(15, 20).map((n) => rec(n)));
    // web: read 0..9, acked up to 3 only (4..9 held by this instance).
    const web = await log.consumer("con_web", { start: "oldest", sourceId: "web" });
    const read = await web.read(10);
    await web.commit(read[3]!.cursor);
    // app: nothing acked.
    const app = await log.consumer("con_app", { start: "oldest", sourceId: "app" });
    expect(numbers(await app.read(2))).toEqual([10, 11]);
    // A consumer no configured connection names (a connection removed, another
    // instance's new one): it holds its records too, and is named in the report.
    const other = await log.consumer("leftover", { start: "oldest" });
    const otherRead = await other.read(1);
    await other.commit(otherRead[0]!.cursor);
    const result = await log.retain({
      ...roomy,
      maxBytes: 0,
      consumers: ["con_web", "con_app"],
    });
    expect(result.records).toBe(1);
    expect(result.holding.sort()).toEqual(["con_app", "con_web", "leftover"]);
    expect((await stateOf(log, opts.stream)).first_seq).toBe(2);
    await other.close();
    const { jsm } = log.use();
    await jsm.consumers.delete(opts.stream, "leftover");
    expect(await log.retain({ ...roomy, maxBytes: 0, consumers: ["con_web", "con_app"] })).toEqual({
      records: 3,
      holding: ["con_app", "con_web"],
    });
    // web's held records come again after it gives them back (an instance stopping);
    // app's unacked ones too, and the ones it never read.
    await web.close();
    await app.close();
    const web2 = await log.consumer("con_web", { start: "oldest", sourceId: "web" });
    expect(numbers(await drain(web2)).sort((a, b) => a - b)).toEqual([
      ...range(4, 10),
      ...range(15, 20),
    ]);
    const app2 = await log.consumer("con_app", { start: "oldest", sourceId: "app" });
    expect(numbers(await drain(app2))).toEqual(range(10, 15));
  });

  test("two instances retaining at once while a connection reads and acks: every record is delivered, in order, none removed early", async () => {
    const server = await start();
    const opts = options({ purgeKeepsPending: false });
    const a = await openLog(opts);
    const b = await openLog(opts);
    await a.append(range(0, 300).map((n) => rec(n)));
    const reader = await a.consumer("con_web", { start: "oldest", sourceId: "web" });
    const got: number[] = [];
    let reading = true;
    const policy = { ...roomy, maxBytes: 0, consumers: ["con_web"] };
    const passes = (async () => {
      while (reading) await Promise.all([a.retain(policy), b.retain(policy)]);
    })();
    try {
      while (got.length < 300) {
        const batch = await reader.read(7, 500);
        if (batch.length === 0) break; // none left: a record removed early would show below
        got.push(...numbers(batch));
        await reader.commit(batch.at(-1)!.cursor);
      }
    } finally {
      reading = false;
      await passes;
    }
    expect(got).toEqual(range(0, 300));
    await Promise.all([a.retain(policy), b.retain(policy)]);
    const nc = await connect({ servers: server.url });
    try {
      const { state } = await (await jetstreamManager(nc)).streams.info(opts.stream);
      expect(state.messages).toBe(0);
    } finally {
      await nc.close();
    }
  });

  test("a pass cuts nothing when a consumer could be left out: a cluster's missing or offline consumers, an info that fails", async () => {
    const server = await start();
    const opts = options({ purgeKeepsPending: false });
    const log = await openLog(opts);
    await log.append(range(0, 10).map((n) => rec(n)));
    const web = await log.consumer("con_web", { start: "oldest", sourceId: "web" });
    await web.commit((await drain(web)).at(-1)!.cursor);
    // The stream's server through a proxy that changes its answers as a cluster's would.
    const nc = await connect({ servers: server.url });
    let mode: "missing" | "offline" | "info-error" | "none" = "missing";
    const text = new TextDecoder();
    nc.subscribe("$FAKE.API.>", {
      callback: (_err, m) =>
        void (async () => {
          const subject = m.subject.replace("$FAKE.API", "$JS.API");
          const reply = await nc.request(subject, m.data, { timeout: 5000 });
          let body = JSON.parse(text.decode(reply.data)) as Record<string, unknown>;
          if (subject.startsWith("$JS.API.CONSUMER.NAMES.")) {
            if (mode === "missing") body.missing = ["con_other"];
            if (mode === "offline") body.offline = { con_other: "leader unknown" };
          }
          if (mode === "info-error" && subject.startsWith("$JS.API.CONSUMER.INFO.")) {
            body = {
              type: "io.nats.jetstream.api.v1.consumer_info_response",
              error: {
                code: 503,
                err_code: 10008,
                description: "JetStream system temporarily unavailable",
              },
            };
          }
          m.respond(JSON.stringify(body));
        })(),
    });
    try {
      const jsm = await jetstreamManager(nc, { apiPrefix: "$FAKE.API" });
      const policy = { ...roomy, maxBytes: 0, consumers: ["con_web"] };
      for (const m of ["missing", "offline", "info-error"] as const) {
        mode = m;
        await expect(
          retainStream(jsm, opts.stream, policy, { purgeKeepsPending: false }),
        ).rejects.toBeInstanceOf(ConsumersUnknownError);
        expect((await stateOf(log, opts.stream)).messages).toBe(10);
      }
      mode = "none";
      expect(await retainStream(jsm, opts.stream, policy, { purgeKeepsPending: false })).toEqual({
        records: 10,
        holding: [],
      });
    } finally {
      await nc.close();
    }
  });

  test("a consumer deleted between the names and its info holds nothing (the pass goes on)", async () => {
    const server = await start();
    const opts = options({ purgeKeepsPending: false });
    const log = await openLog(opts);
    await log.append(range(0, 10).map((n) => rec(n)));
    const web = await log.consumer("con_web", { start: "oldest", sourceId: "web" });
    await web.commit((await drain(web)).at(-1)!.cursor);
    const gone = await log.consumer("con_gone", { start: "oldest", sourceId: "web" });
    await gone.read(1);
    const nc = await connect({ servers: server.url });
    const text = new TextDecoder();
    nc.subscribe("$FAKE.API.>", {
      callback: (_err, m) =>
        void (async () => {
          const subject = m.subject.replace("$FAKE.API", "$JS.API");
          // Its info asked after it was deleted.
          if (
            subject.startsWith("$JS.API.CONSUMER.INFO.") &&
            subject.endsWith(`.${consumerName("con_gone")}`)
          ) {
            await nc.request(
              `$JS.API.CONSUMER.DELETE.${opts.stream}.${consumerName("con_gone")}`,
              undefined,
              {
                timeout: 5000,
              },
            );
          }
          const reply = await nc.request(subject, m.data, { timeout: 5000 });
          m.respond(text.decode(reply.data));
        })(),
    });
    try {
      const jsm = await jetstreamManager(nc, { apiPrefix: "$FAKE.API" });
      const policy = { ...roomy, maxBytes: 0, consumers: ["con_web"] };
      expect(await retainStream(jsm, opts.stream, policy, { purgeKeepsPending: false })).toEqual({
        records: 10,
        holding: [],
      });
    } finally {
      await gone.close().catch(() => undefined);
      await nc.close();
    }
  });
});

describe.skipIf(Boolean(missing))("NATS one-by-one deletes", () => {
  const { start, options, openLog } = natsLogHarness("del");

  test("a message already deleted (in the stream's delete map, or below its first) counts nothing and fails nothing", async () => {
    await start();
    const opts = options({ purgeKeepsPending: false });
    const log = await openLog(opts);
    await log.append(range(0, 10).map((n) => rec(n)));
    const { jsm } = log.use();
    // Deleted by hand (another instance's pass, an operator) with messages before it:
    // in the delete map, the server answers 10043 "sequence 4 not found".
    expect(await jsm.streams.deleteMessage(opts.stream, 4, false)).toBe(true);
    expect(await deleteRange(jsm, opts.stream, 3, 7)).toBe(3);
    // Below the first sequence (10057 "no message found"), and from it on.
    expect(await deleteRange(jsm, opts.stream, 1, 3)).toBe(2);
    expect(await deleteRange(jsm, opts.stream, 1, 9)).toBe(2);
    const { state } = await jsm.streams.info(opts.stream);
    expect([state.first_seq, state.messages]).toEqual([9, 2]);
  });
});
