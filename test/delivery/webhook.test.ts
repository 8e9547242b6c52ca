import { afterEach, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import {
  makeTestConfig,
  runCli,
  spawnServer,
  startTestServer,
  type TestServer,
} from "../support/server.ts";
import { waitFor } from "../support/wait.ts";
import { type Receiver, startReceiver } from "./receiver.ts";
import { caughtUp, deadLettersOf, logLines, waitForDeadLetters } from "./support.ts";

let s: TestServer | undefined;
let r: Receiver | undefined;
afterEach(async () => {
  await s?.cleanup();
  r?.stop();
  s = undefined;
  r = undefined;
});

/** A metric of con_hook, as /metrics shows it. */
async function gauge(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name}\\{connection="con_hook"\\} ([\\d.e+-]+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * Waits until con_hook has confirmed every event of its source: nothing is in flight
 * any more, so what the receiver got is all it will get (no duplicate can follow).
 */
function allConfirmed(url: string) {
  return waitFor(async () => (await gauge(url, "sluice_connection_lag_events")) === 0, {
    what: "con_hook to confirm every event",
  });
}

const hook = (url: string, extra: Record<string, unknown> = {}) => ({
  connections: [
    {
      id: "con_hook",
      source: "web",
      destination: {
        type: "webhook",
        url,
        headers: { "X-Token": "abc" },
        batchSize: 10,
        maxWaitMs: 30,
        retryBaseMs: 10,
        ...extra,
      },
    },
  ],
});

async function send(s: TestServer, ids: string[], key = s.keys.server) {
  const batch = ids.map((messageId) => ({ type: "track", event: "e", userId: "u", messageId }));
  const res = await s.post("/v1/batch", { batch }, { "x-write-key": key });
  expect(res.status).toBe(200);
}

test("every event of the source is delivered once, in order, with the configured headers", async () => {
  r = startReceiver();
  s = await startTestServer({ config: hook(r.url) });
  const ids = Array.from({ length: 35 }, (_, i) => `w-${i}`);
  await send(s, ids.slice(0, 20));
  await send(s, ["other-1"], s.keys.other); // another source: not this connection's
  await send(s, ids.slice(20));
  await r.waitFor(35);
  await allConfirmed(s.url);
  expect(r.delivered().map((e) => e.messageId)).toEqual(ids);
  expect(r.batches.every((b) => b.events.length <= 10)).toBe(true);
  expect(r.headers[0]!.get("x-token")).toBe("abc");
  expect(r.delivered()[0]).toMatchObject({ sourceId: "web", keyId: "wk_server", event: "e" });
});

test("a receiver that answers 500 then 200 gets the batch again, confirmed once", async () => {
  r = startReceiver([500, 503, 429]);
  s = await startTestServer({ config: hook(r.url) });
  await send(s, ["r-1", "r-2", "r-3"]);
  await r.waitFor(3);
  expect(r.batches.map((b) => b.status)).toEqual([500, 503, 429, 200]);
  expect(r.delivered().map((e) => e.messageId)).toEqual(["r-1", "r-2", "r-3"]);
});

test("a 429's Retry-After sets the wait before the next attempt; a 408 is retried too", async () => {
  r = startReceiver([408, 429]);
  r.retryAfter = "1";
  s = await startTestServer({ config: hook(r.url, { retryBaseMs: 10 }) });
  await send(s, ["ra-1"]);
  await r.waitFor(1);
  expect(r.batches.map((b) => b.status)).toEqual([408, 429, 200]);
  // The backoff alone would wait ~10-20 ms; the receiver asked for a second.
  expect(r.batches[2]!.at - r.batches[1]!.at).toBeGreaterThanOrEqual(950);
  const waits = (await logLines(s.logFile))
    .filter((l) => l.msg === "delivery failed; will retry")
    .map((l) => l.retryInMs);
  expect(waits).toHaveLength(2);
  expect(waits[0]).toBeLessThanOrEqual(10);
  expect(waits[1]).toBe(1000);
  expect(await deadLettersOf(s.dataDir, "con_hook")).toEqual([]);
});

test("too many failed attempts (maxAttempts) dead-letter the batch", async () => {
  r = startReceiver([500, 500, 500]);
  s = await startTestServer({ config: hook(r.url, { maxAttempts: 3 }) });
  await send(s, ["f-1"]);
  const [letter] = await waitForDeadLetters(s.dataDir, "con_hook", 1);
  expect(letter!.events.map((e) => e.messageId)).toEqual(["f-1"]);
  expect(letter!.attempts).toBe(3);
  expect(letter!.failure).toMatchObject({ status: 500 });
  expect(letter!.failure.message).toContain("HTTP 500");
  expect(r.batches.map((b) => b.status)).toEqual([500, 500, 500]);
});

test("the offset survives a restart: nothing is delivered twice, nothing skipped", async () => {
  r = startReceiver();
  s = await startTestServer({ config: hook(r.url) });
  await send(s, ["o-1", "o-2"]);
  await r.waitFor(2);
  await caughtUp(s.url, "con_hook"); // confirmed: the offset is saved
  await s.restart();
  await send(s, ["o-3"]);
  await r.waitFor(3);
  await allConfirmed(s.url);
  expect(r.delivered().map((e) => e.messageId)).toEqual(["o-1", "o-2", "o-3"]);
});

for (const start of ["now", "oldest"] as const) {
  test(`a connection added with start: ${start} on an existing log`, async () => {
    r = startReceiver();
    const made = makeTestConfig();
    const first = await spawnServer(made.configFile);
    const post = (url: string, id: string) =>
      fetch(`${url}/v1/track`, {
        method: "POST",
        headers: { "x-write-key": made.keys.server },
        body: JSON.stringify({ event: "e", userId: "u", messageId: id }),
      });
    try {
      expect((await post(first.url, "before")).status).toBe(200);
    } finally {
      first.proc.kill("SIGTERM");
      await first.proc.exited;
    }
    const connection = hook(r.url).connections[0]!;
    writeFileSync(
      made.configFile,
      JSON.stringify({ ...made.config, connections: [{ ...connection, start }] }),
    );
    const second = await spawnServer(made.configFile);
    try {
      expect((await post(second.url, "after")).status).toBe(200);
      await r.waitFor(start === "now" ? 1 : 2);
      await allConfirmed(second.url);
    } finally {
      second.proc.kill("SIGTERM");
      await second.proc.exited;
      rmSync(made.dir, { recursive: true, force: true });
    }
    const expected = start === "now" ? ["after"] : ["before", "after"];
    expect(r.delivered().map((e) => e.messageId)).toEqual(expected);
  });
}

test("`sluice connections` shows each connection's lag and dead letters", async () => {
  r = startReceiver([400, ...Array(1000).fill(500)]);
  s = await startTestServer({ config: hook(r.url, { maxAttempts: 1_000_000, retryBaseMs: 50 }) });
  await send(s, ["c-1", "c-2"]);
  await waitForDeadLetters(s.dataDir, "con_hook", 1); // the 400: both in one dead letter
  await send(s, ["c-3", "c-4", "c-5"]);
  // These three stay unconfirmed (every answer is 500): wait until they are old enough.
  const url = s.url;
  await waitFor(async () => ((await gauge(url, "sluice_connection_lag_seconds")) ?? 0) > 0.2);
  const json = await runCli(["connections", "--json", "--config", s.configFile]);
  expect(json.code).toBe(0);
  const [row] = JSON.parse(json.stdout);
  expect(row).toMatchObject({ id: "con_hook", source: "web", lagEvents: 3, deadLetters: 2 });
  expect(row.lagSeconds).toBeGreaterThan(0.2);
  const table = await runCli(["connections", "--config", s.configFile]);
  expect(table.stdout).toMatch(/con_hook\s+web\s+webhook\s+3\s+[\d.]+\s+2/);
  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  expect(metrics).toContain('sluice_connection_lag_events{connection="con_hook"} 3\n');
  expect(metrics).toContain('sluice_connection_dead_letters{connection="con_hook"} 2\n');
  const lagSeconds = /sluice_connection_lag_seconds\{connection="con_hook"\} ([\d.]+)/.exec(
    metrics,
  );
  expect(Number(lagSeconds?.[1])).toBeGreaterThan(0.2);
});

test("shutdown does not wait out a slow receiver; the batch is delivered after the restart", async () => {
  let hang = true;
  const received: string[] = [];
  const release = Promise.withResolvers<void>();
  const arrived = Promise.withResolvers<void>();
  const slow = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const events = (await req.json()) as { messageId: string }[];
      arrived.resolve();
      if (hang) await release.promise; // never answers while hanging
      received.push(...events.map((e) => e.messageId));
      return new Response("ok");
    },
  });
  try {
    s = await startTestServer({ config: hook(`http://127.0.0.1:${slow.port}/hook`) });
    await send(s, ["slow-1"]);
    await arrived.promise; // the delivery is now waiting on the receiver
    const started = performance.now();
    await s.stop();
    expect(performance.now() - started).toBeLessThan(2000);
    hang = false;
    await s.restart();
    await waitFor(() => received.includes("slow-1"), { what: "slow-1 after the restart" });
  } finally {
    release.resolve();
    slow.stop(true);
  }
});
