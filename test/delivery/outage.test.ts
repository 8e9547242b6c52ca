import { afterEach, expect, test } from "bun:test";
import { RETRY_DEFAULTS } from "../../src/delivery/retry.ts";
import { runCli, startTestServer, type TestServer } from "../support/server.ts";
import { CompressedClock } from "./clock.ts";
import { type Receiver, startReceiver } from "./receiver.ts";
import { deadLettersOf, logLines, metricOf, until, waitForDeadLetters } from "./support.ts";

// SPEC 8: transient failures are retried for a configurable total time, by default
// hours. These tests run the real server, the real webhook destination and the real
// retry policy with its defaults (the connection sets nothing but the URL); only
// delivery's clock runs 20 (or 100) times faster, so two minutes of outage take 6 s and
// every wait the policy computes is the one it would wait in production, divided by
// that factor. The receiver fails by that same clock.

const FACTOR = 100;
const OUTAGE_FACTOR = 20;
let s: TestServer | undefined;
let r: Receiver | undefined;
afterEach(async () => {
  await s?.cleanup();
  r?.stop();
  s = undefined;
  r = undefined;
});

const defaultsOnly = (url: string) => ({
  connections: [{ id: "con_hook", source: "web", destination: { type: "webhook", url } }],
});

async function send(s: TestServer, ids: string[]) {
  const batch = ids.map((messageId) => ({ type: "track", event: "e", userId: "u", messageId }));
  const res = await s.post("/v1/batch", { batch }, { "x-write-key": s.keys.server });
  expect(res.status).toBe(200);
}

const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

test("a 2-minute outage with the default retry settings loses and dead-letters nothing", async () => {
  // 20x here (two minutes take 6 s): a stall of the loaded test machine then costs the
  // retry loop 20x its length in clock time, not 100x (at 100x a 300 ms stall swallowed
  // half a minute of attempts).
  const clock = new CompressedClock(OUTAGE_FACTOR);
  r = startReceiver([], () => clock.now());
  let downUntil = Number.POSITIVE_INFINITY;
  r.fail = () => (clock.now() < downUntil ? 503 : undefined);
  s = await startTestServer({ clock, config: defaultsOnly(r.url) });
  downUntil = clock.now() + 120_000;
  await send(s, range("early", 20));
  await until(() => r!.batches.length >= 3, 10_000, "a few failed attempts");
  const text = await (await fetch(`${s.url}/metrics`)).text();
  expect(text).toContain('sluice_connection_state{connection="con_hook",state="retrying"} 1');
  // More events arrive half-way through the outage.
  await until(() => clock.now() > downUntil - 60_000, 10_000, "half-way");
  await send(s, range("late", 20));
  await r.waitFor(40, 20_000);

  expect(await deadLettersOf(s.dataDir, "con_hook")).toEqual([]);
  expect(new Set(r.delivered().map((e) => e.messageId))).toEqual(
    new Set([...range("early", 20), ...range("late", 20)]),
  );
  expect(r.repeatedKeys()).toEqual([]);
  const failed = r.batches.filter((b) => b.status === 503);
  const firstOk = r.batches.find((b) => b.status === 200)!;
  // It really was down for two minutes, and it kept trying all along: …
  expect(firstOk.at).toBeGreaterThanOrEqual(downUntil);
  expect(failed.length).toBeGreaterThanOrEqual(6);
  // … never waiting longer than the cap between two attempts: the waits the policy
  // chose, as logged, start at about a second (1 s, 2 s, 4 s … with jitter) and stay
  // within 60 s, so it was back within a minute of the receiver.
  const waits = (await logLines(s.logFile))
    .filter((l) => l.msg === "delivery failed; will retry")
    .map((l) => l.retryInMs as number);
  expect(waits.length).toBe(failed.length);
  expect(waits[0]!).toBeGreaterThanOrEqual(RETRY_DEFAULTS.baseMs / 2);
  expect(waits[0]!).toBeLessThanOrEqual(RETRY_DEFAULTS.baseMs);
  expect(waits[1]!).toBeGreaterThanOrEqual(RETRY_DEFAULTS.baseMs);
  expect(Math.max(...waits)).toBeLessThanOrEqual(RETRY_DEFAULTS.maxDelayMs);
  expect(waits.at(-1)!).toBeGreaterThan(RETRY_DEFAULTS.maxDelayMs / 2 - 1); // it reached the cap
  // Measured by the clock, with slack for the machine (each real ms is 20 ms here).
  expect(firstOk.at - downUntil).toBeLessThanOrEqual(RETRY_DEFAULTS.maxDelayMs + 30_000);
  await until(
    async () => (await metricOf(s!.url, "sluice_connection_attempts", "con_hook")) === 0,
    5_000,
    "attempts back to 0",
  );
}, 60_000);

test("past the retry window (24 h by default) the batch is dead-lettered with one error line, and redrive delivers it once", async () => {
  const clock = new CompressedClock(FACTOR);
  r = startReceiver([], () => clock.now());
  let down = true;
  r.fail = () => (down ? 503 : undefined);
  s = await startTestServer({ clock, config: defaultsOnly(r.url) });
  await send(s, ["w-1", "w-2"]);
  await until(() => r!.batches.length >= 2, 10_000, "a retry");
  expect(await deadLettersOf(s.dataDir, "con_hook")).toEqual([]);
  // Just short of the window, it still retries …
  clock.advance(RETRY_DEFAULTS.retryForMs - 3_600_000);
  const before = r.batches.length;
  await until(() => r!.batches.length > before + 1, 10_000, "retries near the window's end");
  expect(await deadLettersOf(s.dataDir, "con_hook")).toEqual([]);
  // … and past it, gives up.
  clock.advance(3_600_000);
  const [letter] = await waitForDeadLetters(s.dataDir, "con_hook", 1);
  expect(letter!.events.map((e) => e.messageId)).toEqual(["w-1", "w-2"]);
  expect(letter!.failure.status).toBe(503);
  expect(letter!.failure.message).toContain("retry window of 24 h");
  const errors = (await logLines(s.logFile)).filter((l) => l.level === 50);
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatchObject({
    connectionId: "con_hook",
    messageIds: ["w-1", "w-2"],
    status: 503,
    deadLetterId: letter!.id,
  });
  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  expect(metrics).toContain('sluice_connection_state{connection="con_hook",state="failing"} 1');
  expect(metrics).toContain('sluice_connection_dead_letters{connection="con_hook"} 2');

  // The receiver is fixed; a redrive (the CLI, beside the running server) sends it once.
  down = false;
  const out = await runCli([
    "deadletters",
    "redrive",
    "--connection",
    "con_hook",
    "--all",
    "--config",
    s.configFile,
  ]);
  expect(out.stdout).toContain("1 dead letter(s) delivered (2 event(s))");
  expect(out.code).toBe(0);
  expect(r.accepted().map((e) => e.messageId)).toEqual(["w-1", "w-2"]);
  expect(r.repeatedKeys()).toEqual([]);
  // Same events, same key: the redrive carried the key of the attempts that failed.
  expect(new Set(r.batches.map((b) => b.key)).size).toBe(1);
  expect(await deadLettersOf(s.dataDir, "con_hook")).toEqual([]);
  await until(
    async () => (await metricOf(s!.url, "sluice_connection_dead_letters", "con_hook")) === 0,
    10_000,
    "the server to count the redriven letters gone",
  );
  // Nothing left to repair: no longer `failing`.
  const after = await (await fetch(`${s.url}/metrics`)).text();
  expect(after).toContain('sluice_connection_state{connection="con_hook",state="running"} 1');
}, 60_000);
