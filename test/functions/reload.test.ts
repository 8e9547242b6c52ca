import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exitCode } from "../support/process.ts";
import { makeTestConfig, type SpawnedServer, spawnServer } from "../support/server.ts";

// SIGHUP reads every function's code again (issue 14): a connection whose code or
// settings changed gets a new function host, calls running on the old one finish
// there, and the reload's log line says what changed.

const version = (n: number, delayMs = 0) =>
  `export default async (e) => { ${delayMs ? `await Bun.sleep(${delayMs});` : ""} e.version = ${n}; };`;

let made: ReturnType<typeof makeTestConfig>;
let server: SpawnedServer;
let config: Record<string, unknown> & { functions: { id: string; timeoutMs?: number }[] };

beforeAll(async () => {
  made = makeTestConfig({
    files: {
      "fn/v.js": version(1),
      "fn/slow.js": version(1, 800),
      "fn/other.js": "export default (e) => { e.other = true; };",
    },
    config: {
      functionRuntime: { workers: 1 },
      functions: [
        { id: "v", file: "./fn/v.js" },
        { id: "slow", file: "./fn/slow.js" },
        { id: "other", file: "./fn/other.js" },
      ],
      connections: [
        { id: "c_v", source: "web", destination: { type: "device" }, functions: ["v"] },
        { id: "c_slow", source: "web", destination: { type: "device" }, functions: ["slow"] },
        { id: "c_other", source: "web", destination: { type: "device" }, functions: ["other"] },
      ],
    },
  });
  config = JSON.parse(readFileSync(made.configFile, "utf8"));
  server = await spawnServer(made.configFile, {}, 60_000);
}, 90_000);

afterAll(async () => {
  server.proc.kill("SIGTERM");
  await exitCode(server.proc, 20_000);
  rmSync(made.dir, { recursive: true, force: true });
});

async function run(conId: string) {
  const res = await fetch(`${server.url}/api/funcs/${conId}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": made.keys.server },
    body: JSON.stringify({ type: "track", event: "e", userId: "u" }),
  });
  return {
    status: res.status,
    body: (await res.json()) as {
      events: Record<string, unknown>[];
      execLog: { error?: { message: string } }[];
    },
  };
}

let reloads = 0;
/** Sends SIGHUP and returns the reload's log line. */
async function hangUp(): Promise<{ changes: string[]; msg: string }> {
  reloads++;
  server.proc.kill("SIGHUP");
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const lines = server
      .output()
      .split("\n")
      .filter((l) => /"msg":"config reload/.test(l));
    if (lines.length >= reloads) return JSON.parse(lines[reloads - 1]!);
    await Bun.sleep(20);
  }
  throw new Error(`no reload line after SIGHUP:\n${server.output()}`);
}

/** Calls `conId` until `check` holds (the new host may take a moment to load). */
async function eventually(conId: string, check: (r: Awaited<ReturnType<typeof run>>) => boolean) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await run(conId);
    if (check(r)) return r;
    if (Date.now() > deadline) throw new Error(`never: ${JSON.stringify(r.body)}`);
    await Bun.sleep(50);
  }
}

test("SIGHUP with nothing changed restarts no function host", async () => {
  expect((await run("c_v")).body.events[0]!.version).toBe(1);
  const line = await hangUp();
  expect(line.changes).toEqual([]);
  expect(server.output()).not.toContain("function host restarted");
  expect((await run("c_v")).body.events[0]!.version).toBe(1);
}, 60_000);

test("SIGHUP loads changed code; only its connection's host is replaced", async () => {
  writeFileSync(join(made.dir, "fn", "v.js"), version(2));
  const line = await hangUp();
  expect(line.changes).toEqual([
    "function v: code changed",
    "connection c_v: function host restarted",
  ]);
  await eventually("c_v", (r) => r.body.events?.[0]?.version === 2);
  expect((await run("c_other")).body.events[0]!.other).toBe(true);
}, 60_000);

test("a call running during the reload finishes on the old code", async () => {
  const running = run("c_slow");
  await Bun.sleep(200);
  writeFileSync(join(made.dir, "fn", "slow.js"), version(2));
  const line = await hangUp();
  expect(line.changes).toContain("function slow: code changed");
  const old = await running;
  expect({ status: old.status, body: old.body }).toMatchObject({ status: 200 });
  expect(old.body.events[0]!.version).toBe(1);
  await eventually("c_slow", (r) => r.body.events?.[0]?.version === 2);
}, 60_000);

test("a reload to code that does not load says so; the next good one runs again", async () => {
  writeFileSync(join(made.dir, "fn", "v.js"), "export default (e) => { e.x = ; };");
  await hangUp();
  const broken = await eventually("c_v", (r) => r.body.execLog[0]?.error !== undefined);
  expect(broken.status).toBe(200);
  const deadline = Date.now() + 10_000;
  while (!server.output().includes("function v failed to load from") && Date.now() < deadline) {
    await Bun.sleep(50);
  }
  expect(server.output()).toContain(
    `function v failed to load from ${join(made.dir, "fn", "v.js")}`,
  );
  writeFileSync(join(made.dir, "fn", "v.js"), version(3));
  await hangUp();
  await eventually("c_v", (r) => r.body.events?.[0]?.version === 3);
}, 60_000);

test("a new timeout in the config is applied and said", async () => {
  config.functions[0]!.timeoutMs = 1234;
  writeFileSync(made.configFile, JSON.stringify(config, null, 2));
  const line = await hangUp();
  expect(line.changes).toEqual([
    "function v: timeoutMs default -> 1234",
    "connection c_v: function host restarted",
  ]);
  expect(line).not.toHaveProperty("restartNeeded", expect.arrayContaining(["functions"]));
  await eventually("c_v", (r) => r.body.events?.[0]?.version === 3);
}, 60_000);
