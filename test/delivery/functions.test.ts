import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { SqliteDeliveryTrace } from "../../src/delivery/trace/sqlite.ts";
import { runCli, startTestServer, type TestServer } from "../support/server.ts";
import { type Receiver, startReceiver } from "./receiver.ts";
import { deadLettersOf, logLines, until, waitForDeadLetters } from "./support.ts";

// SPEC 8: function errors and ctx.log lines during delivery are logged with the
// connection and the messageId and kept for the inspector; a function that fails the
// same way on every attempt sends its event to the dead letters.

const FILES = {
  "fn/noisy.js": `export default (e, ctx) => {
    ctx.log.warn("looking at", e.messageId);
    console.info("plain console line");
    if (e.event === "boom") throw new TypeError("cannot read plan of undefined");
    e.seen = true;
  };`,
  "fn/hang.js": `export default (e) => { if (e.event === "hang") for (;;) {} };`,
};

let s: TestServer;
let r: Receiver;
beforeAll(async () => {
  r = startReceiver();
  s = await startTestServer({
    files: FILES,
    config: {
      functionRuntime: { workers: 1 },
      functions: [
        { id: "noisy", file: "./fn/noisy.js" },
        { id: "hang", file: "./fn/hang.js", timeoutMs: 300 },
      ],
      connections: [
        {
          id: "con_fn",
          source: "web",
          functions: ["noisy", "hang"],
          destination: { type: "webhook", url: r.url, maxWaitMs: 20, retryBaseMs: 20 },
        },
      ],
    },
  });
});
afterAll(async () => {
  await s.cleanup();
  r.stop();
});

async function track(event: string, messageId: string) {
  const res = await s.post(
    "/v1/track",
    { event, userId: "u", messageId },
    {
      "x-write-key": s.keys.server,
    },
  );
  expect(res.status).toBe(200);
}

test("a function throwing during delivery is logged with connection and messageId; the event goes on", async () => {
  await track("boom", "fn-boom-1");
  await track("fine", "fn-fine-1");
  await r.waitFor(2, 20_000);
  // SPEC 7: the chain goes on with the event as it was before the failing function.
  const [boom, fine] = r.delivered();
  expect(boom).toMatchObject({ messageId: "fn-boom-1", event: "boom" });
  expect(boom!.seen).toBeUndefined();
  expect(fine).toMatchObject({ messageId: "fn-fine-1", seen: true });

  const lines = await logLines(s.logFile);
  const failure = lines.find((l) => l.level === 50 && l.messageId === "fn-boom-1");
  expect(failure).toMatchObject({
    connectionId: "con_fn",
    functionId: "noisy",
    msg: "function noisy failed during delivery: TypeError: cannot read plan of undefined",
  });
  // ctx.log and console lines, at their own level.
  const said = lines.filter((l) => l.functionLog === true && l.messageId === "fn-fine-1");
  expect(said.map((l) => [l.level, l.msg])).toEqual([
    [40, "function noisy: looking at fn-fine-1"],
    [30, "function noisy: plain console line"],
  ]);
  expect(said[0]).toMatchObject({ connectionId: "con_fn", functionId: "noisy" });

  // Kept per event for the inspector: the run (exec log and logs), then the attempt.
  const db = new Database(join(s.dataDir, "state.db"));
  const trace = new SqliteDeliveryTrace(db, { logger: pino({ level: "silent" }) });
  try {
    const receivedAt = Date.parse(String(boom!.receivedAt));
    // The attempt is traced once the destination has answered: a moment after it received the event.
    const path = await until(
      async () => {
        const p = await trace.forEvent({ sourceId: "web", messageId: "fn-boom-1", receivedAt });
        return p.length >= 2 && p;
      },
      10_000,
      "the attempt in the event's path",
    );
    expect(path.map((p) => p.entry.kind)).toEqual(["functions", "attempt"]);
    const run = path[0]!.entry as { execLog: { functionId: string; error?: unknown }[] };
    expect(run.execLog.find((e) => e.functionId === "noisy")!.error).toEqual({
      name: "TypeError",
      message: "cannot read plan of undefined",
    });
    expect(path[1]!.entry).toMatchObject({ kind: "attempt", ok: true, status: 200, attempt: 1 });
  } finally {
    trace.close();
    db.close();
  }
}, 30_000);

test("a function timing out on every attempt dead-letters its event; redrive runs the fixed function", async () => {
  await track("hang", "fn-hang-1");
  await track("after", "fn-after-1");
  const [letter] = await waitForDeadLetters(s.dataDir, "con_fn", 1, 20_000);
  expect(letter).toMatchObject({ stage: "functions", attempts: 3 });
  expect(letter!.events.map((e) => e.messageId)).toEqual(["fn-hang-1"]);
  expect(letter!.failure.message).toContain("function hang timed out after 300 ms");
  // The next event was not held up for good.
  await until(() => r.delivered().some((e) => e.messageId === "fn-after-1"), 20_000);
  const errors = (await logLines(s.logFile)).filter(
    (l) => l.level === 50 && l.messageIds !== undefined,
  );
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatchObject({
    msg: "functions failed on every attempt; event dead-lettered",
    connectionId: "con_fn",
    messageIds: ["fn-hang-1"],
  });

  // The function is fixed on disk; the CLI's redrive runs it (in its own function host).
  writeFileSync(join(s.dir, "fn/hang.js"), `export default (e) => { e.fixed = true; };`);
  const out = await runCli([
    "deadletters",
    "redrive",
    "--connection",
    "con_fn",
    "--all",
    "--config",
    s.configFile,
  ]);
  expect(out.stdout).toContain("1 dead letter(s) delivered (1 event(s))");
  expect(out.code).toBe(0);
  const redriven = r.delivered().filter((e) => e.messageId === "fn-hang-1");
  expect(redriven).toHaveLength(1);
  expect(redriven[0]).toMatchObject({ fixed: true, seen: true });
  expect(await deadLettersOf(s.dataDir, "con_fn")).toEqual([]);
}, 60_000);
