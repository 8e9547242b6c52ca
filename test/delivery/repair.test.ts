import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli, startTestServer, type TestServer } from "../support/server.ts";
import { REFUSAL, type Receiver, startReceiver } from "./receiver.ts";
import { deadLettersOf, logLines, until, waitForDeadLetters } from "./support.ts";

// SPEC 8, "Delivery is observable and repairable": a refusal is dead-lettered at once
// and said once at `error`; dead letters are listed and redriven, once each; webhook
// requests carry an idempotency key, an attempt id and, with a secret, a signature.

let s: TestServer | undefined;
let r: Receiver | undefined;
afterEach(async () => {
  await s?.cleanup();
  r?.stop();
  s = undefined;
  r = undefined;
});

const SECRET = "whsec_5f1c0e9a7d";

const hook = (url: string, extra: Record<string, unknown> = {}) => ({
  connections: [
    {
      id: "con_hook",
      source: "web",
      destination: { type: "webhook", url, batchSize: 10, maxWaitMs: 20, ...extra },
    },
  ],
});

async function send(s: TestServer, ids: string[]) {
  const batch = ids.map((messageId) => ({ type: "track", event: "e", userId: "u", messageId }));
  const res = await s.post("/v1/batch", { batch }, { "x-write-key": s.keys.server });
  expect(res.status).toBe(200);
}

const cli = (s: TestServer, ...args: string[]) => runCli([...args, "--config", s.configFile]);

test("a 400 is dead-lettered at once, logged in one error line, and delivery goes on", async () => {
  r = startReceiver([400]);
  s = await startTestServer({ config: hook(r.url) });
  await send(s, ["d-1", "d-2"]);
  const [letter] = await waitForDeadLetters(s.dataDir, "con_hook", 1);
  expect(letter).toMatchObject({
    connectionId: "con_hook",
    stage: "destination",
    attempts: 1,
    failure: { status: 400, message: "HTTP 400", answer: REFUSAL },
  });
  expect(letter!.events.map((e) => e.messageId)).toEqual(["d-1", "d-2"]);
  expect(r.batches).toHaveLength(1); // never retried
  await send(s, ["d-3"]);
  await r.waitFor(1);
  expect(r.delivered().map((e) => e.messageId)).toEqual(["d-3"]);
  const errors = (await logLines(s.logFile)).filter((l) => l.level === 50);
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatchObject({
    msg: "destination refused the batch; dead-lettered",
    connectionId: "con_hook",
    messageIds: ["d-1", "d-2"],
    status: 400,
    answer: REFUSAL,
    deadLetterId: letter!.id,
  });
  // The CLI lists it, as a table and as JSON.
  const table = await cli(s, "deadletters", "list", "--connection", "con_hook");
  expect(table.code).toBe(0);
  expect(table.stdout).toMatch(
    new RegExp(`${letter!.id}\\s+\\S+Z\\s+2\\s+1\\s+destination\\s+HTTP 400: \\{"error"`),
  );
  const json = await cli(s, "deadletters", "list", "--connection", "con_hook", "--json");
  expect(JSON.parse(json.stdout)).toEqual([letter]);
});

test("redrive while the destination is still down keeps every letter; after the fix each is delivered once", async () => {
  r = startReceiver();
  let status: number | undefined = 400;
  r.fail = () => status;
  s = await startTestServer({ config: hook(r.url) });
  // Three batches refused, three letters.
  for (const [i, ids] of [["a-1", "a-2"], ["b-1"], ["c-1", "c-2", "c-3"]].entries()) {
    await send(s, ids);
    await waitForDeadLetters(s.dataDir, "con_hook", i + 1);
  }
  const letters = await deadLettersOf(s.dataDir, "con_hook");
  const refusedKeys = r.batches.map((b) => b.key);

  status = 503; // now it is down
  const down = await cli(s, "deadletters", "redrive", "--connection", "con_hook", "--all");
  expect(down.code).toBe(1);
  expect(down.stdout).toContain("0 dead letter(s) delivered");
  expect(down.stdout).toContain(`still failing: ${letters[0]!.id}: HTTP 503`);
  expect(down.stdout).toContain("2 left untried");
  const kept = await deadLettersOf(s.dataDir, "con_hook");
  expect(kept.map((l) => l.id)).toEqual(letters.map((l) => l.id));
  expect(kept.map((l) => l.events)).toEqual(letters.map((l) => l.events));
  expect(kept[0]).toMatchObject({ attempts: 2, failure: { status: 503 } });
  expect(kept[1]!.attempts).toBe(1); // untried

  status = undefined; // fixed
  const one = await cli(
    s,
    "deadletters",
    "redrive",
    "--connection",
    "con_hook",
    "--id",
    letters[1]!.id,
  );
  expect(one.code).toBe(0);
  expect(one.stdout).toContain("1 dead letter(s) delivered (1 event(s))");
  const rest = await cli(s, "deadletters", "redrive", "--connection", "con_hook", "--all");
  expect(rest.code).toBe(0);
  expect(rest.stdout).toContain("2 dead letter(s) delivered (5 event(s))");
  const again = await cli(s, "deadletters", "redrive", "--connection", "con_hook", "--all");
  expect(again.stdout).toContain("0 dead letter(s) delivered");
  expect(await deadLettersOf(s.dataDir, "con_hook")).toEqual([]);

  // Each dead letter reached the receiver once, with the key of its first attempt.
  expect(r.repeatedKeys()).toEqual([]);
  expect(
    r
      .accepted()
      .map((e) => e.messageId)
      .sort(),
  ).toEqual(["a-1", "a-2", "b-1", "c-1", "c-2", "c-3"].sort());
  const okKeys = r.batches.filter((b) => b.status === 200).map((b) => b.key);
  expect(new Set(okKeys)).toEqual(new Set(refusedKeys));
});

test("deadletters: unknown connection exits 2 with the ids; --all or --id is required", async () => {
  r = startReceiver();
  s = await startTestServer({ config: hook(r.url) });
  const unknown = await cli(s, "deadletters", "list", "--connection", "nope");
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain("unknown connection nope");
  expect(unknown.stderr).toContain("con_hook");
  const neither = await cli(s, "deadletters", "redrive", "--connection", "con_hook");
  expect(neither.code).toBe(2);
  expect(neither.stderr).toContain("give either --all or --id");
  const missing = await cli(s, "deadletters", "redrive", "--connection", "con_hook", "--id", "x");
  expect(missing.code).toBe(1);
  expect(missing.stdout).toContain("no dead letter x on con_hook");
});

/** The verification snippet from the README, as a user would paste it. */
async function readmeVerifier(): Promise<
  (secret: string, header: string, body: string, tolerance?: number) => boolean
> {
  const readme = readFileSync(join(import.meta.dir, "..", "..", "README.md"), "utf8");
  const m =
    /<!-- signature-snippet:start -->\s*```js\n([\s\S]*?)```\s*<!-- signature-snippet:end -->/.exec(
      readme,
    );
  expect(m).not.toBeNull();
  const dir = mkdtempSync(join(tmpdir(), "sluice-snippet-"));
  try {
    writeFileSync(join(dir, "verify.mjs"), m![1]!);
    const mod = await import(join(dir, "verify.mjs"));
    return mod.verifySluiceSignature;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("webhook requests carry Idempotency-Key, X-Sluice-Delivery and a signature the README snippet verifies", async () => {
  const verify = await readmeVerifier();
  r = startReceiver([500]);
  s = await startTestServer({ config: hook(r.url, { secret: SECRET, retryBaseMs: 10 }) });
  await send(s, ["s-1", "s-2"]);
  await r.waitFor(2);
  await send(s, ["s-3"]);
  await r.waitFor(3);
  const [failed, retried, next] = r.batches;
  // A retry of the same events: same key, another attempt id.
  expect(failed!.key).toMatch(/^sluice-[0-9a-f]{64}$/);
  expect(retried!.key).toBe(failed!.key!);
  expect(retried!.delivery).not.toBe(failed!.delivery);
  expect(failed!.delivery).toMatch(/^[0-9a-f-]{36}$/);
  // Other events, another key.
  expect(next!.key).not.toBe(failed!.key);
  for (const b of r.batches) {
    const header = b.headers.get("x-sluice-signature")!;
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verify(SECRET, header, b.body)).toBe(true);
    expect(verify("whsec_wrong", header, b.body)).toBe(false);
    expect(verify(SECRET, header, b.body.replace("s-", "x-"))).toBe(false);
  }
  // An old signature is refused (replay protection): the snippet checks the timestamp.
  const old = Math.floor(Date.now() / 1000) - 3600;
  const { signatureHeader } = await import("../../src/delivery/signature.ts");
  expect(verify(SECRET, signatureHeader(SECRET, "[]", old), "[]")).toBe(false);
  expect(verify(SECRET, signatureHeader(SECRET, "[]", old), "[]", 7200)).toBe(true);
  // The secret is never in a log line.
  await until(async () => (await logLines(s!.logFile)).length > 0);
  expect(readFileSync(s.logFile, "utf8")).not.toContain(SECRET);
});

test("dead letters of sluice 0.1 (one NDJSON file per connection) are imported once and can be redriven", async () => {
  r = startReceiver();
  const old = [
    {
      at: "2026-11-20T10:00:00.000Z",
      reason: "HTTP 400",
      attempts: 1,
      event: {
        type: "track",
        event: "e",
        userId: "u",
        messageId: "old-1",
        sourceId: "web",
        keyId: "wk_server",
        receivedAt: "2026-11-20T09:59:59.000Z",
        timestamp: "2026-11-20T09:59:59.000Z",
      },
    },
    {
      at: "2026-11-20T10:00:01.000Z",
      reason: "HTTP 500",
      attempts: 8,
      event: {
        type: "track",
        event: "e",
        userId: "u",
        messageId: "old-2",
        sourceId: "web",
        keyId: "wk_server",
        receivedAt: "2026-11-20T10:00:00.000Z",
        timestamp: "2026-11-20T10:00:00.000Z",
      },
    },
  ];
  s = await startTestServer({
    config: hook(r.url),
    files: {
      "data/dead-letter/con_hook.ndjson": `${old.map((l) => JSON.stringify(l)).join("\n")}\n`,
    },
  });
  const letters = await deadLettersOf(s.dataDir, "con_hook");
  expect(letters.map((l) => [l.events[0]!.messageId, l.failure.message, l.attempts])).toEqual([
    ["old-1", "HTTP 400", 1],
    ["old-2", "HTTP 500", 8],
  ]);
  expect(letters[0]!.createdAt).toBe(Date.parse("2026-11-20T10:00:00.000Z"));
  await s.restart(); // read once: the file was renamed
  expect(await deadLettersOf(s.dataDir, "con_hook")).toHaveLength(2);
  const out = await cli(s, "deadletters", "redrive", "--connection", "con_hook", "--all");
  expect(out.stdout).toContain("2 dead letter(s) delivered (2 event(s))");
  expect(r.accepted().map((e) => e.messageId)).toEqual(["old-1", "old-2"]);
});
