import { expect, test } from "bun:test";
import { cleanedAfterEach, exitCode, startCli } from "../support/process.ts";
import { makeTestConfig, storedEvents } from "../support/server.ts";

// SPEC 5: one process owns a data dir; a second `sluice serve` on it refuses to start
// with a clear message. The lock is the OS's, so it goes away with a killed process.

const { dirs, spawn } = cleanedAfterEach();

function track(url: string, key: string, messageId: string) {
  return fetch(`${url}/v1/track`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": key },
    body: JSON.stringify({ event: "Locked", userId: "u1", messageId }),
  });
}

test("a second server on the same data dir refuses to start; the first keeps serving", async () => {
  const made = makeTestConfig();
  dirs.push(made.dir);
  const first = await spawn(made.configFile);
  expect((await track(first.url, made.keys.server, "before")).status).toBe(200);

  const second = startCli(["serve", "--config", made.configFile], { env: { PORT: "0" } });
  const code = await exitCode(second.proc);
  expect(code).not.toBe(0);
  expect(second.output()).toContain(`data dir ${made.dataDir} is in use by another sluice process`);
  expect(second.output()).toContain(`pid ${first.proc.pid}`);
  expect(second.output()).not.toContain("sluice started");

  // The first server is untouched: it still answers and stores.
  expect(first.proc.exitCode).toBeNull();
  expect((await track(first.url, made.keys.server, "during")).status).toBe(200);

  // kill -9 leaves no stale lock: a new server takes the dir at once.
  first.proc.kill(9);
  await exitCode(first.proc);
  const third = await spawn(made.configFile);
  expect((await track(third.url, made.keys.server, "after")).status).toBe(200);
  const ids = (await storedEvents(made.dataDir)).map((e) => e.messageId);
  expect(ids).toEqual(["before", "during", "after"]);
}, 15_000);

test("a second server on the same port (another data dir) fails instead of sharing the port", async () => {
  const a = makeTestConfig();
  const b = makeTestConfig();
  dirs.push(a.dir, b.dir);
  const first = await spawn(a.configFile);

  const second = startCli(["serve", "--config", b.configFile], {
    env: { PORT: String(first.port) },
  });
  expect(await exitCode(second.proc)).toBe(1);
  expect(second.output()).not.toContain("sluice started");
  expect(second.output()).toContain("cannot listen: the port is in use");
  // Every request still reaches the first server, which knows only its own keys.
  for (let i = 0; i < 5; i++) {
    expect((await track(first.url, a.keys.server, `a-${i}`)).status).toBe(200);
  }
  expect(await storedEvents(a.dataDir)).toHaveLength(5);
}, 15_000);
