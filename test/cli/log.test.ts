import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { exitCode, sendBatch, startCli, trackEvents } from "../support/process.ts";
import { makeTestConfig, runCli, type SpawnedServer, spawnServer } from "../support/server.ts";

// SPEC 10: `sluice log tail [--from-start] [--follow] [--source ID]` prints stored
// events as NDJSON, one per line; `sluice log verify` checks every record.

const made = makeTestConfig();
let server: SpawnedServer;
/** The messageIds in the order they were stored: web-0…9, other-0…2, web-10…14. */
const order = [
  ...Array.from({ length: 10 }, (_, i) => `web-${i}`),
  "other-0",
  "other-1",
  "other-2",
  ...Array.from({ length: 5 }, (_, i) => `web-${i + 10}`),
];

beforeAll(async () => {
  server = await spawnServer(made.configFile);
  const web = trackEvents("web", 15);
  await sendBatch(server.url, made.keys.server, web.slice(0, 10));
  await sendBatch(server.url, made.keys.other, trackEvents("other", 3));
  await sendBatch(server.url, made.keys.server, web.slice(10));
});
afterAll(async () => {
  server.proc.kill("SIGTERM");
  await exitCode(server.proc);
  rmSync(made.dir, { recursive: true, force: true });
});

/** Parses NDJSON strictly: every line one JSON object, nothing else on stdout. */
function ndjson(stdout: string): Record<string, unknown>[] {
  expect(stdout === "" || stdout.endsWith("\n")).toBe(true);
  return stdout
    .split("\n")
    .slice(0, -1)
    .map((line) => {
      const event = JSON.parse(line) as Record<string, unknown>;
      expect(typeof event).toBe("object");
      return event;
    });
}

async function tail(...args: string[]) {
  const res = await runCli(["log", "tail", ...args, "--config", made.configFile]);
  expect(res.stderr).toBe("");
  expect(res.code).toBe(0);
  return ndjson(res.stdout);
}

const ids = (events: Record<string, unknown>[]) => events.map((e) => e.messageId);

test("--from-start prints every stored event as NDJSON, one per line, in order", async () => {
  const events = await tail("--from-start");
  expect(ids(events)).toEqual(order);
  expect(events[0]).toMatchObject({
    type: "track",
    event: "Durability Checked",
    sourceId: "web",
    keyId: "wk_server",
  });
  expect(events[10]).toMatchObject({ sourceId: "other", keyId: "wk_other" });
  for (const e of events) expect(typeof e.receivedAt).toBe("string");
});

test("without --from-start it prints the last 10 events; -n changes how many", async () => {
  expect(ids(await tail())).toEqual(order.slice(-10));
  expect(ids(await tail("-n", "3"))).toEqual(order.slice(-3));
});

test("--source keeps only that source's events", async () => {
  expect(ids(await tail("--source", "other"))).toEqual(["other-0", "other-1", "other-2"]);
  const web = await tail("--from-start", "--source", "web");
  expect(ids(web)).toEqual(order.filter((id) => id.startsWith("web-")));
  expect(ids(await tail("--source", "web"))).toEqual(
    order.filter((id) => id.startsWith("web-")).slice(-10),
  );
  expect(await tail("--source", "nope")).toEqual([]);
});

test("--follow prints the last events, then each event appended later, until stopped", async () => {
  const follower = startCli(["log", "tail", "--follow", "--config", made.configFile]);
  const other = startCli(["log", "tail", "-f", "--source", "other", "--config", made.configFile]);
  try {
    await follower.waitFor(/"messageId":"web-14"/);
    await other.waitFor(/"messageId":"other-2"/);
    await sendBatch(server.url, made.keys.server, trackEvents("followed", 4));
    await sendBatch(server.url, made.keys.other, trackEvents("followed-other", 2));
    await follower.waitFor(/"messageId":"followed-other-1"/);
    await other.waitFor(/"messageId":"followed-other-1"/);
  } finally {
    follower.proc.kill("SIGTERM");
    other.proc.kill("SIGTERM");
  }
  expect(await exitCode(follower.proc)).toBe(0);
  expect(await exitCode(other.proc)).toBe(0);
  expect(ids(ndjson(follower.stdout()))).toEqual([
    ...order.slice(-10),
    ...["followed-0", "followed-1", "followed-2", "followed-3"],
    ...["followed-other-0", "followed-other-1"],
  ]);
  expect(ids(ndjson(other.stdout()))).toEqual([
    ...["other-0", "other-1", "other-2"],
    ...["followed-other-0", "followed-other-1"],
  ]);
}, 15_000);

test("log verify exits 0 on a sound log and counts its records", async () => {
  const res = await runCli(["log", "verify", "--config", made.configFile]);
  expect(res.code).toBe(0);
  expect(res.stderr).toBe("");
  expect(res.stdout).toMatch(/^1 segment\(s\), \d+ record\(s\), \d+ bytes: ok\n$/);
});

test("log tail on a data dir with no events prints nothing and exits 0", async () => {
  const empty = makeTestConfig();
  try {
    const res = await runCli(["log", "tail", "--from-start", "--config", empty.configFile]);
    expect(res).toEqual({ stdout: "", stderr: "", code: 0 });
  } finally {
    rmSync(empty.dir, { recursive: true, force: true });
  }
});

test("an unknown log subcommand is a usage error (exit 2)", async () => {
  const res = await runCli(["log", "rewind", "--config", made.configFile]);
  expect(res.code).toBe(2);
  expect(res.stderr).toContain("unknown command: log rewind");
  expect(res.stderr).toContain("Usage: sluice log tail|verify");
});

test("a large log is printed whole through a pipe (more than the pipe's 64 KB buffer)", async () => {
  const big = makeTestConfig();
  const s = await spawnServer(big.configFile);
  try {
    const events = trackEvents("big", 1000);
    for (let i = 0; i < events.length; i += 250) {
      await sendBatch(s.url, big.keys.server, events.slice(i, i + 250));
    }
    const res = await runCli(["log", "tail", "--from-start", "--config", big.configFile]);
    expect(res.code).toBe(0);
    expect(res.stdout.length).toBeGreaterThan(200_000);
    expect(ids(ndjson(res.stdout))).toEqual(events.map((e) => e.messageId));
    const last = await runCli(["log", "tail", "-n", "500", "--config", big.configFile]);
    expect(ids(ndjson(last.stdout))).toEqual(events.slice(-500).map((e) => e.messageId));
  } finally {
    s.proc.kill(9);
    rmSync(big.dir, { recursive: true, force: true });
  }
}, 15_000);
